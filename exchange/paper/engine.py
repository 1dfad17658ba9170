"""`PaperExchange`: the adapter interface in SIM mode, on top of the market simulator.

- Orders are keyed by client order id; placing an existing id returns that order (idempotent).
- MARKET orders take liquidity level by level from the top of book (taker fee). Post-only
  LIMIT orders that would cross are rejected (`post_only_would_cross`, Binance GTX behaviour);
  otherwise they rest and fill as maker when the market trades through their price, or, while
  they sit at the touch, in random partial fills at `touch_fill_rate_per_s`.
- Rejects: unknown symbol, quantity below the lot, notional below the minimum, insufficient
  margin, reduce-only without a position, and occasional simulated overload (`reject_prob`).
- One-way linear positions (domain.positions.apply_fill); realized PnL and fees go to the wallet.
  There is no liquidation: the risk caps keep paper exposure far from it.
- Streams: once `attach(sink)` is called, every step pushes each symbol's new top and every
  closed bar (market), and every order change, fill, position and balance change (account),
  in the order they happen.

Not thread-safe: the hosting process serialises calls and ticks.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from config.settings import PaperSettings
from domain.positions import apply_fill, unrealized_pnl
from domain.vocabulary import Direction
from exchange.adapter import (
    Balance,
    Bar,
    BookTop,
    ExchangeAdapter,
    ExchangeFill,
    ExchangePosition,
    Instrument,
    Liquidity,
    Order,
    OrderRequest,
)
from exchange.errors import BadRequest, OrderNotFound, OrderRejected
from exchange.paper.market import MarketSimulator
from exchange.paper.store import PaperStore
from exchange.paper.venue_market import VenueMarket
from exchange.streams import (
    BalanceChanged,
    BarClosed,
    BookTicked,
    ExchangeSnapshot,
    NullSink,
    OrderChanged,
    PositionChanged,
    StreamSink,
    TradeExecuted,
)
from exchange.ticks import floor_to, round_to

ORDER_RETENTION_S = 24 * 3600.0
PRUNE_EVERY_S = 3600.0
MAX_BOOK_LEVELS = 50


def _dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


@dataclass
class PaperPosition:
    qty: float  # signed: + long, - short
    entry_price: float
    realized_pnl: float = 0.0  # since the position opened
    opened_at: float = 0.0
    updated_at: float = 0.0

    @property
    def direction(self) -> Direction:
        return "LONG" if self.qty > 0 else "SHORT"


@dataclass
class EngineStats:
    orders_placed: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    fills: dict[str, int] = field(default_factory=dict)
    fill_notional: float = 0.0


class PaperExchange(ExchangeAdapter):
    def __init__(
        self,
        paper: PaperSettings,
        symbols: Sequence[str],
        store: PaperStore,
        clock: Callable[[], float] = time.time,
        *,
        market: VenueMarket | None = None,
        instruments: dict[str, Instrument] | None = None,
    ) -> None:
        """`market` and `instruments` replace the simulator and its instruments (DRY_RUN: the
        venue's market data and exchange filters)."""
        self.paper = paper
        self.store = store
        self.clock = clock
        self.symbols = list(symbols)
        self._instruments = instruments if instruments is not None else {
            s: Instrument(symbol=s, tick_size=spec.tick_size, lot_size=spec.lot_size, min_notional=spec.min_notional)
            for s in self.symbols
            if (spec := paper.instruments.get(s)) is not None
        }
        now = clock()
        self.stats = EngineStats()
        self._rng = random.Random()
        with store.transaction():
            saved_market = store.get("market")
            self.market: MarketSimulator | VenueMarket = (
                market if market is not None else MarketSimulator(paper, self.symbols, saved_market, now))
            account = store.get("account") or {"wallet_balance": paper.starting_balance, "fees_paid": 0.0}
            self.wallet_balance = float(account["wallet_balance"])
            self.fees_paid = float(account["fees_paid"])
            self.positions = {s: PaperPosition(**p) for s, p in (store.get("positions") or {}).items()}
            counters = store.get("counters") or {
                "epoch": secrets.token_hex(3), "order_seq": 0, "trade_seq": 0,
            }
            # The epoch makes ids unique across a wiped exchange database, so the positions
            # store never mistakes a new trade for one it has already applied.
            self.epoch = str(counters["epoch"])
            self.order_seq = int(counters["order_seq"])
            self.trade_seq = int(counters["trade_seq"])
            self.orders: dict[str, Order] = {o.client_order_id: o for o in store.orders()}
            if saved_market is None:
                self._save_market()
                self._save_account()
        self._open = {cid for cid, o in self.orders.items() if o.is_open}
        self.sink: StreamSink = NullSink()
        self._saved_bar_index = self._bar_index()
        self._next_prune = now

    @property
    def open_order_count(self) -> int:
        return len(self._open)

    # --- persistence helpers ------------------------------------------------------------------

    def _bar_index(self) -> int:
        return max((m.bar_index for m in self.market.markets.values()), default=-1)

    def _save_market(self) -> None:
        self.store.put("market", self.market.dump())

    def _save_account(self) -> None:
        self.store.put("account", {"wallet_balance": self.wallet_balance, "fees_paid": self.fees_paid})
        self.store.put("positions", {s: asdict(p) for s, p in self.positions.items()})
        self.store.put("counters", {"epoch": self.epoch, "order_seq": self.order_seq, "trade_seq": self.trade_seq})

    def _put_order(self, order: Order) -> Order:
        self.orders[order.client_order_id] = order
        if order.is_open:
            self._open.add(order.client_order_id)
        else:
            self._open.discard(order.client_order_id)
        self.store.save_order(order)
        self.sink.account(OrderChanged(order=order.model_copy(update={"fills": []})))
        return order

    def _reject(self, code: str, detail: str) -> OrderRejected:
        self.stats.rejects[code] = self.stats.rejects.get(code, 0) + 1
        return OrderRejected(code, detail)

    # --- the clock ----------------------------------------------------------------------------

    def attach(self, sink: StreamSink) -> None:
        self.sink = sink

    def next_step_at(self) -> float | None:
        """Wall time the simulated market's next step is due; None when venue data drives it."""
        return self.market.next_step_at()

    def tick(self, now: float | None = None) -> int:
        """Advance the market to `now` and match resting orders at every step; returns fills made."""
        now = self.clock() if now is None else now
        fills = 0
        stepped = False
        for ts in self.market.advance(now):
            stepped = True
            fills += self._match_resting(ts)
        if stepped:
            for symbol, bar in self.market.closed:
                self.sink.market(BarClosed(symbol=symbol, bar=bar))
            self.market.closed.clear()
            for symbol in self.market.markets:
                self.sink.market(BookTicked(top=self.market.top(symbol)))
        if self._bar_index() != self._saved_bar_index:
            with self.store.transaction():
                self._save_market()
            self._saved_bar_index = self._bar_index()
        if now >= self._next_prune:
            self._prune(now)
        return fills

    def save(self) -> None:
        """Persist the market mid-bar (clean shutdown)."""
        with self.store.transaction():
            self._save_market()

    def _prune(self, now: float) -> None:
        self._next_prune = now + PRUNE_EVERY_S
        cutoff = now - ORDER_RETENTION_S
        with self.store.transaction():
            self.store.prune_orders(cutoff)
        for cid in [c for c, o in self.orders.items() if not o.is_open and o.updated_at.timestamp() < cutoff]:
            del self.orders[cid]

    def _match_resting(self, ts: float) -> int:
        fills = 0
        p_touch = 1.0 - math.exp(-self.paper.touch_fill_rate_per_s * self.paper.tick_s)
        for cid in sorted(self._open):
            order = self.orders[cid]
            if order.order_type != "LIMIT" or order.price is None:
                continue
            spec = self._instruments[order.symbol]
            top = self.market.top(order.symbol)
            half_tick = spec.tick_size / 2
            if order.side == "BUY":
                crossed = top.ask <= order.price + half_tick
                at_touch = order.price >= top.bid - half_tick
            else:
                crossed = top.bid >= order.price - half_tick
                at_touch = order.price <= top.ask + half_tick
            remaining = order.remaining_qty
            if crossed:
                qty = remaining
            elif at_touch:
                self._rng.seed(f"{self.paper.seed}:touch:{self.market.step}:{cid}")
                if self._rng.random() >= p_touch:
                    continue
                qty = floor_to(remaining * self._rng.uniform(0.25, 1.0), spec.lot_size)
                if qty < spec.lot_size / 2 or remaining - qty < spec.lot_size / 2:
                    qty = remaining
            else:
                continue
            with self.store.transaction():
                if self._execute(order, qty, order.price, "maker", ts):
                    fills += 1
        return fills

    # --- execution ----------------------------------------------------------------------------

    def _reducible(self, symbol: str, side: str) -> float:
        """How much a `side` order can reduce the current position of `symbol`."""
        pos = self.positions.get(symbol)
        if pos is None:
            return 0.0
        reduces = (pos.qty > 0 and side == "SELL") or (pos.qty < 0 and side == "BUY")
        return abs(pos.qty) if reduces else 0.0

    def _execute(self, order: Order, qty: float, price: float, liquidity: Liquidity, ts: float) -> bool:
        """OrderFilled `qty` of `order` at `price`; False if a reduce-only order found nothing to reduce."""
        spec = self._instruments[order.symbol]
        if order.reduce_only:
            qty = min(qty, self._reducible(order.symbol, order.side))
            if qty < spec.lot_size / 2:
                self._put_order(order.model_copy(update={
                    "status": "CANCELED", "reason": "reduce_only_no_position", "updated_at": _dt(ts)}))
                return False
        qty = round_to(qty, spec.lot_size)
        fee_bps = self.paper.maker_fee_bps if liquidity == "maker" else self.paper.taker_fee_bps
        fee = round(qty * price * fee_bps / 10_000.0, 10)
        pos = self.positions.get(order.symbol) or PaperPosition(0.0, 0.0, opened_at=ts)
        result = apply_fill(pos.qty, pos.entry_price, order.side, qty, price)
        if result.qty == 0.0:
            self.positions.pop(order.symbol, None)
        else:
            new = PaperPosition(result.qty, result.entry_price, pos.realized_pnl + result.realized, pos.opened_at, ts)
            if pos.qty == 0.0 or result.flipped:
                new.opened_at, new.realized_pnl = ts, 0.0
            self.positions[order.symbol] = new
        self.wallet_balance += result.realized - fee
        self.fees_paid += fee
        self.trade_seq += 1
        fill = ExchangeFill(
            trade_id=f"{self.epoch}-T{self.trade_seq}", order_id=order.order_id,
            client_order_id=order.client_order_id, symbol=order.symbol, side=order.side, qty=qty, price=price,
            fee=fee, liquidity=liquidity, realized_pnl=round(result.realized, 10),
            reduce_only=order.reduce_only, ts=_dt(ts),
        )
        filled = order.filled_qty + qty
        avg = ((order.avg_price or 0.0) * order.filled_qty + price * qty) / filled
        done = order.qty - filled < spec.lot_size / 2
        self.sink.account(TradeExecuted(fill=fill))
        self._put_order(order.model_copy(update={
            "filled_qty": round_to(filled, spec.lot_size), "avg_price": avg,
            "status": "FILLED" if done else "PARTIALLY_FILLED", "updated_at": _dt(ts),
            "fills": [*order.fills, fill],
        }))
        self.store.save_fill(self.trade_seq, fill)
        self._save_account()
        self.sink.account(PositionChanged(symbol=order.symbol, position=self._position(order.symbol)))
        self.sink.account(BalanceChanged(balance=self.fetch_balance()))
        self.stats.fills[liquidity] = self.stats.fills.get(liquidity, 0) + 1
        self.stats.fill_notional += qty * price
        return True

    def _take(self, order: Order, top: BookTop, qty: float, ts: float, limit: float | None = None) -> float:
        """Take up to `qty` from the book, level by level; returns the quantity filled."""
        spec = self._instruments[order.symbol]
        level_step = max(spec.tick_size, round_to((top.ask - top.bid) / 2, spec.tick_size))
        filled = 0.0
        for level in range(MAX_BOOK_LEVELS):
            if order.side == "BUY":
                price, size = round_to(top.ask + level * level_step, spec.tick_size), top.ask_qty
                if limit is not None and price > limit:
                    break
            else:
                price, size = round_to(top.bid - level * level_step, spec.tick_size), top.bid_qty
                if limit is not None and price < limit:
                    break
            take = min(qty - filled, size)
            if take < spec.lot_size / 2 or price <= 0:
                break
            if not self._execute(self.orders[order.client_order_id], take, price, "taker", ts):
                break
            filled += take
            if qty - filled < spec.lot_size / 2:
                break
        return filled

    # --- the adapter interface -----------------------------------------------------------------

    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    def _spec(self, symbol: str) -> Instrument:
        spec = self._instruments.get(symbol)
        if spec is None:
            raise BadRequest("unknown_symbol", f"{symbol} is not listed (listed: {', '.join(self._instruments)})")
        return spec

    def fetch_tops(self, symbols: Iterable[str]) -> dict[str, BookTop]:
        return {s: self.market.top(s) for s in symbols if self._spec(s)}

    def fetch_bars(self, symbol: str, limit: int) -> list[Bar]:
        self._spec(symbol)
        return self.market.bars(symbol, limit)

    def fetch_balance(self) -> Balance:
        unrealized = 0.0
        position_margin = 0.0
        for symbol, pos in self.positions.items():
            mark = self.market.top(symbol).mark
            unrealized += unrealized_pnl(pos.direction, abs(pos.qty), pos.entry_price, mark)
            position_margin += abs(pos.qty) * mark / self.paper.leverage
        order_margin = sum(
            o.remaining_qty * (o.price or 0.0) / self.paper.leverage
            for cid in self._open if not (o := self.orders[cid]).reduce_only
        )
        margin_balance = self.wallet_balance + unrealized
        return Balance(
            wallet_balance=round(self.wallet_balance, 8), unrealized_pnl=round(unrealized, 8),
            margin_balance=round(margin_balance, 8), position_margin=round(position_margin, 8),
            order_margin=round(order_margin, 8),
            available_balance=round(margin_balance - position_margin - order_margin, 8),
            fees_paid=round(self.fees_paid, 8), ts=_dt(self.clock()),
        )

    def _position(self, symbol: str) -> ExchangePosition | None:
        pos = self.positions.get(symbol)
        if pos is None:
            return None
        mark = self.market.top(symbol).mark
        qty = abs(pos.qty)
        return ExchangePosition(
            symbol=symbol, side=pos.direction, qty=qty, entry_price=pos.entry_price, mark_price=mark,
            unrealized_pnl=unrealized_pnl(pos.direction, qty, pos.entry_price, mark), realized_pnl=pos.realized_pnl,
            leverage=self.paper.leverage, margin=qty * mark / self.paper.leverage,
            opened_at=_dt(pos.opened_at) if pos.opened_at else None,
            updated_at=_dt(pos.updated_at or pos.opened_at),
        )

    def fetch_positions(self) -> list[ExchangePosition]:
        return [p for symbol in sorted(self.positions) if (p := self._position(symbol)) is not None]

    def snapshot(self) -> ExchangeSnapshot:
        return ExchangeSnapshot(
            tops={s: self.market.top(s) for s in self._instruments}, positions=self.fetch_positions(),
            open_orders=sorted((self.orders[c] for c in self._open), key=lambda o: (o.created_at, o.order_id)),
            balance=self.fetch_balance())

    def place_order(self, request: OrderRequest) -> Order:
        existing = self.orders.get(request.client_order_id)
        if existing is not None:
            return existing
        spec = self._spec(request.symbol)
        top = self.market.top(request.symbol)
        now = self.clock()
        qty = floor_to(request.qty, spec.lot_size)
        if qty < spec.lot_size / 2:
            raise self._reject("qty_below_lot", f"qty {request.qty} below lot size {spec.lot_size}")
        price = round_to(request.price, spec.tick_size) if request.price is not None else None
        self._rng.seed(f"{self.paper.seed}:place:{request.client_order_id}")
        if self._rng.random() < self.paper.reject_prob:
            raise self._reject("overloaded", "simulated exchange overload (-1008); retry")
        reducible = self._reducible(request.symbol, request.side)
        if request.reduce_only:
            if reducible <= 0:
                raise self._reject("reduce_only_rejected", f"no {request.symbol} position this order would reduce")
            qty = min(qty, floor_to(reducible, spec.lot_size) or reducible)
        elif qty > reducible:
            ref = price if price is not None else (top.ask if request.side == "BUY" else top.bid)
            notional = (qty - reducible) * ref
            if qty * ref < spec.min_notional:
                raise self._reject("min_notional", f"notional {qty * ref:.2f} below minimum {spec.min_notional}")
            need = notional / self.paper.leverage + notional * self.paper.taker_fee_bps / 10_000.0
            available = self.fetch_balance().available_balance
            if need > available:
                raise self._reject("insufficient_margin", f"needs {need:.2f} margin, {available:.2f} available")
        crosses = price is not None and (
            (request.side == "BUY" and price >= top.ask) or (request.side == "SELL" and price <= top.bid))
        if request.post_only and crosses:
            raise self._reject("post_only_would_cross", f"post-only {request.side} at {price} would take "
                                                        f"(bid {top.bid} ask {top.ask})")
        with self.store.transaction():
            self.order_seq += 1
            order = self._put_order(Order(
                order_id=f"{self.epoch}-O{self.order_seq}", client_order_id=request.client_order_id,
                symbol=request.symbol, side=request.side, order_type=request.order_type, status="NEW", qty=qty,
                price=price, post_only=request.post_only, reduce_only=request.reduce_only,
                created_at=_dt(now), updated_at=_dt(now),
            ))
            self.stats.orders_placed += 1
            if request.order_type == "MARKET" or crosses:
                filled = self._take(order, top, qty, now, limit=price)
                order = self.orders[order.client_order_id]
                if request.order_type == "MARKET" and order.is_open:
                    reason = "insufficient_liquidity" if filled > 0 else "no_liquidity"
                    order = self._put_order(order.model_copy(update={"status": "CANCELED", "reason": reason}))
            self._save_account()
        return self.orders[request.client_order_id]

    def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        order = self.orders.get(client_order_id)
        if order is None or order.symbol != symbol:
            raise OrderNotFound("unknown_order", f"{symbol} {client_order_id}")
        if not order.is_open:
            return order
        with self.store.transaction():
            return self._put_order(order.model_copy(update={
                "status": "CANCELED", "reason": "canceled", "updated_at": _dt(self.clock())}))

    def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        order = self.orders.get(client_order_id)
        if order is None or order.symbol != symbol:
            raise OrderNotFound("unknown_order", f"{symbol} {client_order_id}")
        return order

    def fetch_orders(self, symbol: str, client_order_id_prefix: str = "", open_only: bool = False) -> list[Order]:
        self._spec(symbol)
        found = [o for cid, o in self.orders.items()
                 if o.symbol == symbol and cid.startswith(client_order_id_prefix) and (o.is_open or not open_only)]
        return sorted(found, key=lambda o: (o.created_at, o.order_id))

    def fetch_fills(
        self, since: datetime | None = None, symbol: str | None = None, limit: int = 1000
    ) -> list[ExchangeFill]:
        if symbol is not None:
            self._spec(symbol)
        return self.store.fills(since, symbol, limit)

    def close(self) -> None:
        self.store.close()
