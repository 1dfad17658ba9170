"""The matching engine: orders (checked by order_checks), fills against the price walk, PnL, events.

Every account trades against the synthetic market (there is no matching between accounts):
MARKET orders and crossing LIMIT orders fill at the touch as taker (in `fill_chunks` trades),
resting LIMIT orders fill at their price as maker when the walk crosses them (at most the touch
quantity per tick, so large orders fill partially over several ticks).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import account_payloads
from .account import Account, Order, Position, Trade
from .clock import VenueClock
from .config import SymbolSpec, VenueConfig
from .errors import BinanceError, either_mandatory, error, mandatory
from .faults import FaultKind, FaultRegistry
from .market import MarketData, SymbolMarket
from .numbers import ZERO, floor_to_step, parse_int
from .order_checks import check_reduce, forced_error, parse_order

Json = dict[str, Any]
EventSink = Callable[[str, Json], None]

FEE_QUANTUM = Decimal("0.00000001")


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
        request = parse_order(params, spec, account)
        api_key = params.get("_api_key")
        forced = self.faults.take(FaultKind.REJECT, api_key=api_key, symbol=spec.symbol, side=request.side)
        if forced is not None:
            raise forced_error(int(forced.params["code"]), spec, forced.params.get("msg"))
        closing = request.reduce_only or self._closes(account, request.position_side, request.side)
        if closing:
            check_reduce(account, request)
        market = self.sym_market(spec.symbol)
        reference = request.price if request.type == "LIMIT" else market.last_price
        if not closing:
            if request.quantity * reference < spec.min_notional:
                raise error(-4164, f"{spec.min_notional.normalize():f}")
            if request.quantity * reference / account.leverage_of(spec.symbol) > self.available(account):
                raise error(-2019)
        crosses = request.type == "LIMIT" and (
            (request.side == "BUY" and request.price >= market.top.ask)
            or (request.side == "SELL" and request.price <= market.top.bid)
        )
        if request.time_in_force == "GTX" and crosses:
            raise error(-5022)
        if request.time_in_force == "FOK" and not crosses:
            raise error(-5021)
        order = Order(
            account_id=account_id,
            order_id=next(self._order_ids),
            client_order_id=request.client_order_id,
            symbol=spec.symbol,
            side=request.side,
            position_side=request.position_side,
            type=request.type,
            time_in_force=request.time_in_force,
            orig_qty=request.quantity,
            price=request.price,
            reduce_only=request.reduce_only,
            time=now,
            update_time=now,
            self_trade_prevention=request.self_trade_prevention,
            good_till_date=request.good_till_date,
        )
        account.orders[order.order_id] = order
        self._emit_order(order, "NEW", None, now)
        ack = account_payloads.order(spec, order)
        chunking = self.faults.take(FaultKind.PARTIAL_FILLS, api_key=api_key, symbol=spec.symbol, side=request.side)
        if request.type == "MARKET" or crosses:
            self._take(account, order, chunking, now)
        elif request.time_in_force == "IOC":
            self._finish(order, "EXPIRED", now)
        elif chunking is not None:
            share = floor_to_step(request.quantity / int(chunking.params["chunks"]), spec.step_size)
            order.max_fill_per_tick = max(spec.step_size, share)
        self.on_change()
        return order, ack

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
        update = account_payloads.account_update("ORDER", account, [(spec, pos)], ZERO, self.marks(), now)
        if self.config.trade_lite:
            self.sink(account.account_id, account_payloads.trade_lite(spec, order, trade, now))
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
        self.sink(order.account_id, account_payloads.order_trade_update(spec, order, execution, trade, now))

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
            raise either_mandatory("origClientOrderId", "orderId")
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
        self.sink(account_id, account_payloads.account_config_update(spec.symbol, leverage, now))
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
