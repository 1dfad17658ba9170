"""The matching engine: order validation as Binance does it, fills against the price walk, PnL, events.

Every account trades against the synthetic market (there is no matching between accounts):
MARKET orders and crossing LIMIT orders fill at the touch as taker (in `fill_chunks` trades),
resting LIMIT orders fill at their price as maker when the walk crosses them (at most the touch
quantity per tick, so large orders fill partially over several ticks).
"""

from __future__ import annotations

import itertools
import re
import secrets
import string
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import payloads
from .account import Account, Order, Position, Trade
from .clock import VenueClock
from .config import SymbolSpec, VenueConfig
from .errors import BinanceError, error, mandatory
from .faults import FaultKind, FaultRegistry
from .market import MarketData, SymbolMarket
from .numbers import ZERO, decimals_of, floor_to_step, is_multiple, parse_decimal, parse_int

Json = dict[str, Any]
EventSink = Callable[[str, Json], None]

CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
CONDITIONAL_TYPES = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})
TIME_IN_FORCE = frozenset({"GTC", "IOC", "FOK", "GTX", "GTD"})
FEE_QUANTUM = Decimal("0.00000001")


def _bool_param(params: dict[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise error(-1130, name)
    return lowered == "true"


class Engine:
    """Accounts and orders. Not thread-safe: runs on the venue's event loop."""

    def __init__(self, config: VenueConfig, clock: VenueClock, market: MarketData, faults: FaultRegistry,
                 sink: EventSink, on_change: Callable[[], None]) -> None:
        self.config = config
        self.clock = clock
        self.market = market
        self.faults = faults
        self.sink = sink
        self.on_change = on_change
        self.specs = config.symbol_map()
        self.accounts: dict[str, Account] = {}
        self._order_ids = itertools.count(4_000_000_000 + config.seed * 1000)
        self._trade_ids = itertools.count(500_000_000 + config.seed * 1000)

    # --- accounts -------------------------------------------------------------------------------

    def account(self, account_id: str) -> Account:
        if account_id not in self.accounts:
            self.accounts[account_id] = Account(
                account_id, self.config.starting_balance, self.config.default_leverage,
                balance_update_time=self.clock.now_ms(),
            )
        return self.accounts[account_id]

    def spec(self, symbol: str | None) -> SymbolSpec:
        if not symbol:
            raise mandatory("symbol")
        spec = self.specs.get(symbol)
        if spec is None:
            raise error(-1121)
        return spec

    def sym_market(self, symbol: str) -> SymbolMarket:
        market = self.market.get(symbol)
        assert market is not None
        return market

    def mark(self, symbol: str) -> Decimal:
        return self.sym_market(symbol).mark_price

    def marks(self) -> dict[str, Decimal]:
        return {symbol: m.mark_price for symbol, m in self.market.symbols.items()}

    def unrealized(self, account: Account) -> Decimal:
        return sum((p.unrealized(self.mark(p.symbol)) for p in account.positions.values()), ZERO)

    def position_margin(self, account: Account, symbol: str | None = None) -> Decimal:
        return sum(
            (abs(p.amount) * self.mark(p.symbol) / account.leverage_of(p.symbol)
             for p in account.positions.values() if symbol is None or p.symbol == symbol),
            ZERO,
        )

    def open_order_margin(self, account: Account, symbol: str | None = None) -> Decimal:
        total = ZERO
        for o in account.open_orders(symbol):
            if o.reduce_only or self._closes(account, o.position_side, o.side):
                continue
            price = o.price if o.price else self.mark(o.symbol)
            total += o.remaining * price / account.leverage_of(o.symbol)
        return total

    def available(self, account: Account) -> Decimal:
        used = self.position_margin(account) + self.open_order_margin(account)
        return account.balance + self.unrealized(account) - used

    @staticmethod
    def _closes(account: Account, position_side: str, side: str) -> bool:
        """Hedge mode: SELL on LONG and BUY on SHORT close (they behave as reduce-only)."""
        return (position_side == "LONG" and side == "SELL") or (position_side == "SHORT" and side == "BUY")

    # --- placing orders -------------------------------------------------------------------------

    def new_order(self, account_id: str, params: dict[str, str]) -> tuple[Order, Json]:
        """Validate and place. Returns the order and its payload at acceptance (the ACK response)."""
        account = self.account(account_id)
        now = self.clock.now_ms()
        spec = self.spec(params.get("symbol"))
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
        resp_type = params.get("newOrderRespType", "ACK")
        if resp_type not in ("ACK", "RESULT"):
            raise error(-1136)
        position_side = params.get("positionSide") or "BOTH"
        if position_side not in ("BOTH", "LONG", "SHORT"):
            raise BinanceError(-4060, "Invalid position side.")
        reduce_only = _bool_param(params, "reduceOnly")
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
        client_id = params.get("newClientOrderId") or self._client_id()
        if not CLIENT_ID_RE.match(client_id):
            raise error(-4015)
        if any(o.client_order_id == client_id for o in account.open_orders()):
            raise error(-4116)
        self._check_filters(spec, order_type, quantity, price)
        forced = self.faults.take(FaultKind.REJECT, api_key=params.get("_api_key"), symbol=spec.symbol, side=side)
        if forced is not None:
            code = int(forced.params["code"])
            raise BinanceError(code, forced.params["msg"]) if forced.params.get("msg") else self._forced(code, spec)
        closing = bool(reduce_only) or self._closes(account, position_side, side)
        if closing:
            self._check_reduce(account, spec.symbol, position_side, side, quantity)
        market = self.sym_market(spec.symbol)
        reference = price if order_type == "LIMIT" else market.last_price
        if not closing and quantity * reference < spec.min_notional:
            raise error(-4164, f"{spec.min_notional.normalize():f}")
        if not closing:
            required = quantity * reference / account.leverage_of(spec.symbol)
            if required > self.available(account):
                raise error(-2019)
        crosses = order_type == "LIMIT" and (
            (side == "BUY" and price >= market.top.ask) or (side == "SELL" and price <= market.top.bid)
        )
        if time_in_force == "GTX" and crosses:
            raise error(-5022)
        if time_in_force == "FOK" and not crosses:
            raise error(-5021)
        order = Order(
            account_id=account_id,
            order_id=next(self._order_ids),
            client_order_id=client_id,
            symbol=spec.symbol,
            side=side,
            position_side=position_side,
            type=order_type,
            time_in_force=time_in_force,
            orig_qty=quantity,
            price=price,
            reduce_only=bool(reduce_only),
            time=now,
            update_time=now,
            self_trade_prevention=params.get("selfTradePreventionMode") or "EXPIRE_MAKER",
            good_till_date=good_till,
        )
        account.orders[order.order_id] = order
        self._emit_order(order, "NEW", None, now)
        ack = payloads.order(spec, order)
        chunking = self.faults.take(FaultKind.PARTIAL_FILLS, api_key=params.get("_api_key"), symbol=spec.symbol,
                                    side=side)
        if order_type == "MARKET" or crosses:
            self._take(account, order, chunking, now)
        elif time_in_force == "IOC":
            self._finish(order, "EXPIRED", now)
        elif chunking is not None:
            order.max_fill_per_tick = max(
                spec.step_size, floor_to_step(quantity / int(chunking.params["chunks"]), spec.step_size)
            )
        self.on_change()
        return order, ack

    @staticmethod
    def _check_reduce(account: Account, symbol: str, position_side: str, side: str, quantity: Decimal) -> None:
        """-2022 for a reduce-only (or hedge-mode closing) order that cannot reduce the position."""
        pos = account.position(symbol, position_side)
        if position_side == "BOTH":
            ok = pos.amount != 0 and (side == "SELL") == (pos.amount > 0)
        else:
            # Hedge mode: SELL closes LONG, BUY closes SHORT, never more than the position.
            ok = pos.amount != 0 and quantity <= abs(pos.amount)
        if not ok:
            raise error(-2022)

    def _client_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(22))

    @staticmethod
    def _forced(code: int, spec: SymbolSpec) -> BinanceError:
        """The error a reject fault answers with: the documented message, placeholders filled plausibly."""
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

    @staticmethod
    def _check_filters(spec: SymbolSpec, order_type: str, quantity: Decimal, price: Decimal) -> None:
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

    # --- fills ----------------------------------------------------------------------------------

    def _chunk_sizes(self, spec: SymbolSpec, quantity: Decimal, chunks: int) -> list[Decimal]:
        steps = int(quantity / spec.step_size)
        chunks = max(1, min(chunks, steps))
        base = floor_to_step(quantity / chunks, spec.step_size)
        sizes = [base] * (chunks - 1)
        sizes.append(quantity - base * (chunks - 1))
        return [s for s in sizes if s > 0]

    def _take(self, account: Account, order: Order, chunking: Any, now: int) -> None:
        """Fill as taker at the touch: now, or partly now and the rest in scheduled chunks."""
        spec = self.specs[order.symbol]
        chunks = int(chunking.params["chunks"]) if chunking is not None else self.config.fill_chunks
        delay_ms = int(float(chunking.params["delay_s"]) * 1000) if chunking is not None else 0
        sizes = self._chunk_sizes(spec, order.orig_qty, chunks)
        if delay_ms > 0 and len(sizes) > 1:
            self._taker_fill(account, order, sizes[0], 0, now)
            order.pending_chunks = [(now + delay_ms * i, size) for i, size in enumerate(sizes[1:], start=1)]
            return
        for index, size in enumerate(sizes):
            if not order.is_open:
                break
            self._taker_fill(account, order, size, index, now)
        if order.is_open and order.remaining > 0 and order.time_in_force in ("IOC", "FOK"):
            self._finish(order, "EXPIRED", now)

    def _taker_fill(self, account: Account, order: Order, size: Decimal, index: int, now: int) -> None:
        spec = self.specs[order.symbol]
        top = self.sym_market(order.symbol).top
        slip = spec.tick_size * self.config.chunk_slippage_ticks * index
        price = top.ask + slip if order.side == "BUY" else top.bid - slip
        if order.type == "LIMIT":
            price = min(price, order.price) if order.side == "BUY" else max(price, order.price)
        self._fill(account, order, size, price, maker=False, now=now)

    def _fill(self, account: Account, order: Order, size: Decimal, price: Decimal, *, maker: bool, now: int) -> None:
        spec = self.specs[order.symbol]
        pos = account.position(order.symbol, order.position_side)
        if order.reduce_only or self._closes(account, order.position_side, order.side):
            closable = abs(pos.amount) if (pos.amount > 0) == (order.side == "SELL") else ZERO
            size = min(size, closable)
            if size <= 0:
                self._finish(order, "EXPIRED", now)
                return
        size = min(size, order.remaining)
        rate = self.config.maker_fee if maker else self.config.taker_fee
        fee = (size * price * rate).quantize(FEE_QUANTUM)
        delta = size if order.side == "BUY" else -size
        realized = pos.apply(delta, price, fee, now)
        account.balance += realized - fee
        account.balance_update_time = now
        order.executed_qty += size
        order.cum_quote += size * price
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_time = now
        if order.status == "FILLED":
            order.pending_chunks = []
        trade = Trade(
            account_id=account.account_id,
            id=next(self._trade_ids),
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            position_side=order.position_side,
            price=price,
            qty=size,
            commission=fee,
            commission_asset=spec.quote_asset,
            realized_pnl=realized,
            maker=maker,
            time=now,
        )
        account.trades.append(trade)
        self.sym_market(order.symbol).record_trade(trade.id, price, size, order.side == "BUY", now)
        update = payloads.account_update("ORDER", account, [(spec, pos)], ZERO, self.marks(), now)
        if self.config.trade_lite:
            self.sink(account.account_id, payloads.trade_lite(spec, order, trade, now))
        if self.config.account_update_first:
            self.sink(account.account_id, update)
            self._emit_order(order, "TRADE", trade, now)
        else:
            self._emit_order(order, "TRADE", trade, now)
            self.sink(account.account_id, update)
        if order.is_open and (order.reduce_only or self._closes(account, order.position_side, order.side)) \
                and pos.amount == 0:
            self._finish(order, "EXPIRED", now)

    def _finish(self, order: Order, status: str, now: int) -> None:
        order.status = status
        order.update_time = now
        order.pending_chunks = []
        self._emit_order(order, status, None, now)

    def _emit_order(self, order: Order, execution: str, trade: Trade | None, now: int) -> None:
        spec = self.specs[order.symbol]
        self.sink(order.account_id, payloads.order_trade_update(spec, order, execution, trade, now))

    def on_tick(self, symbol: str) -> None:
        """After the walk moved: fill crossed resting orders, due chunks, expire GTD orders."""
        market = self.sym_market(symbol)
        top = market.top
        now = self.clock.now_ms()
        changed = False
        for account in self.accounts.values():
            for order in sorted(account.open_orders(symbol), key=lambda o: o.order_id):
                if order.time_in_force == "GTD" and order.good_till_date and now >= order.good_till_date:
                    self._finish(order, "EXPIRED", now)
                    changed = True
                    continue
                if order.pending_chunks:
                    changed |= self._due_chunks(account, order, now)
                    continue
                crossed = (order.side == "BUY" and top.ask <= order.price) or (
                    order.side == "SELL" and top.bid >= order.price
                )
                if order.type != "LIMIT" or not crossed:
                    continue
                # A resting order takes what the touch shows, once: a paused book does not refill.
                available = top.ask_qty - market.ask_taken if order.side == "BUY" else top.bid_qty - market.bid_taken
                size = min(order.remaining, available)
                if order.max_fill_per_tick is not None:
                    size = min(size, order.max_fill_per_tick)
                if size <= 0:
                    continue
                if order.side == "BUY":
                    market.ask_taken += size
                else:
                    market.bid_taken += size
                self._fill(account, order, size, order.price, maker=True, now=now)
                changed = True
        if changed:
            self.on_change()

    def _due_chunks(self, account: Account, order: Order, now: int) -> bool:
        due = [chunk for chunk in order.pending_chunks if chunk[0] <= now]
        if not due:
            return False
        order.pending_chunks = [chunk for chunk in order.pending_chunks if chunk[0] > now]
        for _, size in due:
            if order.is_open:
                self._taker_fill(account, order, size, 0, now)
        return True

    # --- queries and cancels --------------------------------------------------------------------

    def find(self, account_id: str, params: dict[str, str]) -> Order:
        spec = self.spec(params.get("symbol"))
        order_id = parse_int("orderId", params.get("orderId"))
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        order = self.account(account_id).find_order(spec.symbol, order_id, client_id)
        if order is None:
            raise error(-2013)
        return order

    def cancel(self, account_id: str, params: dict[str, str]) -> Order:
        try:
            order = self.find(account_id, params)
        except BinanceError as exc:
            if exc.code == -2013:
                raise error(-2011) from exc
            raise
        if not order.is_open:
            raise error(-2011)
        self._finish(order, "CANCELED", self.clock.now_ms())
        self.on_change()
        return order

    def cancel_all(self, account_id: str, symbol: str | None) -> None:
        spec = self.spec(symbol)
        now = self.clock.now_ms()
        for order in self.account(account_id).open_orders(spec.symbol):
            self._finish(order, "CANCELED", now)
        self.on_change()

    # --- account settings -----------------------------------------------------------------------

    def set_leverage(self, account_id: str, symbol: str | None, leverage: int | None) -> Json:
        spec = self.spec(symbol)
        if leverage is None:
            raise mandatory("leverage")
        if not 1 <= leverage <= spec.max_leverage:
            raise error(-4028, leverage)
        account = self.account(account_id)
        account.leverage[spec.symbol] = leverage
        now = self.clock.now_ms()
        self.sink(account_id, payloads.account_config_update(spec.symbol, leverage, now))
        self.on_change()
        return {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": spec.symbol}

    def set_margin_type(self, account_id: str, symbol: str | None, margin_type: str | None) -> None:
        spec = self.spec(symbol)
        if not margin_type:
            raise mandatory("marginType")
        wanted = margin_type.upper()
        if wanted not in ("ISOLATED", "CROSSED"):
            raise error(-1130, "marginType")
        account = self.account(account_id)
        if account.margin_type_of(spec.symbol) == wanted:
            raise error(-4046)
        if account.open_orders(spec.symbol):
            raise error(-4047)
        if account.has_position(spec.symbol):
            raise error(-4048)
        account.margin_type[spec.symbol] = wanted
        self.on_change()

    def set_dual_side(self, account_id: str, dual: bool | None) -> None:
        if dual is None:
            raise mandatory("dualSidePosition")
        account = self.account(account_id)
        if account.dual_side == dual:
            raise error(-4059)
        if account.open_orders():
            raise error(-4067)
        if account.has_position():
            raise error(-4068)
        account.dual_side = dual
        account.positions = {}
        self.on_change()

    def positions_for(self, account: Account, symbol: str | None) -> list[Position]:
        """Every (symbol, side) of the current mode, created flat when missing (v2 lists them all)."""
        out = []
        for spec in self.config.symbols:
            if symbol is not None and spec.symbol != symbol:
                continue
            out.extend(account.position(spec.symbol, side) for side in account.position_sides())
        return out
