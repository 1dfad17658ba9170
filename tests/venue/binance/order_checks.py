"""New-order parameters checked in Binance's order: each failure is the error Binance answers."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from decimal import Decimal

from .account import Account
from .config import SymbolSpec
from .errors import BinanceError, error, mandatory
from .numbers import ZERO, decimals_of, is_multiple, parse_decimal, parse_int

CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
CONDITIONAL_TYPES = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})
TIME_IN_FORCE = frozenset({"GTC", "IOC", "FOK", "GTX", "GTD"})
ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class OrderRequest:
    spec: SymbolSpec
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    position_side: str
    reduce_only: bool
    client_order_id: str
    good_till_date: int
    self_trade_prevention: str

    @property
    def symbol(self) -> str:
        return self.spec.symbol


def bool_param(params: dict[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise error(-1130, name)
    return lowered == "true"


def new_client_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(22))


def parse_order(params: dict[str, str], spec: SymbolSpec, account: Account) -> OrderRequest:
    """Everything Binance checks before the order reaches the book (the symbol is already valid)."""
    side = params.get("side")
    if not side:
        raise mandatory("side")
    if side not in ("BUY", "SELL"):
        raise error(-1117)
    order_type = params.get("type")
    if not order_type:
        raise mandatory("type")
    if order_type in CONDITIONAL_TYPES:
        raise error(-4120)
    if order_type not in ("LIMIT", "MARKET"):
        raise error(-1116)
    if params.get("newOrderRespType", "ACK") not in ("ACK", "RESULT"):
        raise error(-1136)
    position_side = params.get("positionSide") or "BOTH"
    if position_side not in ("BOTH", "LONG", "SHORT"):
        raise BinanceError(-4060, "Invalid position side.")
    reduce_only = bool_param(params, "reduceOnly")
    if account.dual_side:
        if position_side == "BOTH":
            raise error(-4061)
        if reduce_only is not None:
            raise error(-1106, "reduceOnly")
    elif position_side != "BOTH":
        raise error(-4061)
    quantity = parse_decimal("quantity", params.get("quantity"))
    assert quantity is not None
    price = ZERO
    time_in_force = "GTC"
    good_till = 0
    if order_type == "LIMIT":
        tif = params.get("timeInForce")
        if not tif:
            raise mandatory("timeInForce")
        if tif not in TIME_IN_FORCE:
            raise error(-1115)
        time_in_force = tif
        parsed_price = parse_decimal("price", params.get("price"))
        assert parsed_price is not None
        price = parsed_price
        if tif == "GTD":
            good_till = parse_int("goodTillDate", params.get("goodTillDate"), required=True) or 0
    elif params.get("price"):
        raise error(-1106, "price")
    client_id = params.get("newClientOrderId") or new_client_id()
    if not CLIENT_ID_RE.match(client_id):
        raise error(-4015)
    if any(o.client_order_id == client_id for o in account.open_orders()):
        raise error(-4116)
    check_filters(spec, order_type, quantity, price)
    return OrderRequest(spec, side, order_type, time_in_force, quantity, price, position_side, bool(reduce_only),
                        client_id, good_till, params.get("selfTradePreventionMode") or "NONE")


def check_filters(spec: SymbolSpec, order_type: str, quantity: Decimal, price: Decimal) -> None:
    """Precision, LOT_SIZE / MARKET_LOT_SIZE and PRICE_FILTER."""
    if decimals_of(quantity) > spec.qty_places:
        raise error(-1111)
    if order_type == "LIMIT" and decimals_of(price) > spec.price_places:
        raise error(-1111)
    if quantity <= 0:
        raise error(-4003)
    min_qty, max_qty = (
        (spec.min_qty, spec.max_qty) if order_type == "LIMIT" else (spec.market_min_qty, spec.market_max_qty)
    )
    if quantity < min_qty:
        raise error(-4004)
    if quantity > max_qty:
        raise error(-4005)
    if not is_multiple(quantity, spec.step_size):
        raise error(-4023)
    if order_type == "LIMIT":
        if price <= 0:
            raise error(-4001)
        if price < spec.min_price:
            raise error(-4013)
        if price > spec.max_price:
            raise error(-4002)
        if not is_multiple(price, spec.tick_size):
            raise error(-4014)


def check_reduce(account: Account, request: OrderRequest) -> None:
    """-2022 for a reduce-only (or hedge-mode closing) order that cannot reduce the position."""
    pos = account.position(request.symbol, request.position_side)
    if request.position_side == "BOTH":
        ok = pos.amount != 0 and (request.side == "SELL") == (pos.amount > 0)
    else:
        # Hedge mode: SELL closes LONG, BUY closes SHORT, never more than the position.
        ok = pos.amount != 0 and request.quantity <= abs(pos.amount)
    if not ok:
        raise error(-2022)


def forced_error(code: int, spec: SymbolSpec, msg: str | None = None) -> BinanceError:
    """The error a reject fault answers with: the documented message, placeholders filled plausibly."""
    if msg:
        return BinanceError(code, msg)
    args: dict[int, tuple[object, ...]] = {
        -4164: (f"{spec.min_notional.normalize():f}",),
        -1015: (1200, "MINUTE"),
        -1003: (2400,),
        -1102: ("quantity",),
        -1106: ("reduceOnly",),
        -1100: ("price", r"^([0-9]{1,20})(\.[0-9]{1,20})?$"),
        -1130: ("quantity",),
        -4028: (0,),
        -1127: (168,),
    }
    return error(code, *args.get(code, ()))
