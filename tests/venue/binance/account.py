"""Accounts: USDT wallet, positions (one-way or hedge), leverage and margin type, orders, trades."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .numbers import ZERO

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})


@dataclass
class Order:
    account_id: str
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    position_side: str
    type: str
    time_in_force: str
    orig_qty: Decimal
    price: Decimal
    reduce_only: bool
    time: int
    update_time: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    self_trade_prevention: str = "NONE"
    good_till_date: int = 0
    price_match: str = "NONE"
    working_type: str = "CONTRACT_PRICE"
    # Fills still to come (MARKET orders split by the partial-fill fault): (due ms, quantity).
    pending_chunks: list[tuple[int, Decimal]] = field(default_factory=list)
    # Resting orders under the partial-fill fault fill at most this much per tick.
    max_fill_per_tick: Decimal | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO


@dataclass
class Trade:
    account_id: str
    id: int
    order_id: int
    symbol: str
    side: str
    position_side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    realized_pnl: Decimal
    maker: bool
    time: int

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty

    @property
    def buyer(self) -> bool:
        return self.side == "BUY"


@dataclass
class Position:
    """`amount` is signed: LONG and BOTH-long positive, SHORT and BOTH-short negative (as Binance)."""

    symbol: str
    side: str
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    accumulated_realized: Decimal = ZERO
    open_fees: Decimal = ZERO
    update_time: int = 0

    @property
    def breakeven_price(self) -> Decimal:
        if not self.amount:
            return ZERO
        per_unit = self.open_fees / abs(self.amount)
        return self.entry_price + per_unit if self.amount > 0 else self.entry_price - per_unit

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.amount * (mark - self.entry_price) if self.amount else ZERO

    def apply(self, delta: Decimal, price: Decimal, fee: Decimal, now_ms: int) -> Decimal:
        """Add a signed fill; returns the realized PnL (before fees) of the part that closed."""
        old = self.amount
        realized = ZERO
        if old == 0 or (old > 0) == (delta > 0):
            new = old + delta
            self.entry_price = (abs(old) * self.entry_price + abs(delta) * price) / abs(new)
            self.open_fees += fee
        else:
            closing = min(abs(delta), abs(old))
            realized = closing * (price - self.entry_price) * (1 if old > 0 else -1)
            new = old + delta
            if new == 0:
                self.entry_price = ZERO
                self.open_fees = ZERO
            elif (new > 0) != (old > 0):
                # Flipped: the rest opens a new position at the fill price with its share of the fee.
                self.entry_price = price
                self.open_fees = fee * (abs(new) / abs(delta))
            else:
                self.open_fees = self.open_fees * abs(new) / abs(old)
        self.amount = new
        self.accumulated_realized += realized
        self.update_time = now_ms
        return realized


@dataclass
class Account:
    account_id: str
    balance: Decimal
    default_leverage: int
    dual_side: bool = False
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    balance_update_time: int = 0

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, self.default_leverage)

    def margin_type_of(self, symbol: str) -> str:
        return self.margin_type.get(symbol, "CROSSED")

    def position(self, symbol: str, side: str) -> Position:
        key = (symbol, side)
        if key not in self.positions:
            self.positions[key] = Position(symbol, side)
        return self.positions[key]

    def position_sides(self) -> tuple[str, ...]:
        return ("LONG", "SHORT") if self.dual_side else ("BOTH",)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    def find_order(self, symbol: str, order_id: int | None, client_order_id: str | None) -> Order | None:
        if order_id is not None:
            order = self.orders.get(order_id)
            return order if order is not None and order.symbol == symbol else None
        matches = [o for o in self.orders.values() if o.symbol == symbol and o.client_order_id == client_order_id]
        if not matches:
            return None
        # An open order owns its client id; otherwise the most recent one.
        open_ = [o for o in matches if o.is_open]
        return open_[0] if open_ else max(matches, key=lambda o: o.order_id)

    def has_position(self, symbol: str | None = None) -> bool:
        return any(p.amount for (sym, _), p in self.positions.items() if symbol is None or sym == symbol)
