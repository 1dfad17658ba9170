"""The user-data stream: a listenKey, one websocket on it, and a REST resync after every connect.

Each (re)connect, in this order, so no fill can fall between stream and snapshot:
1. POST listenKey (the account's active key, extended, or a new one);
2. connect /ws/<listenKey>; from now on events are buffered;
3. over REST: the trades since the last one pushed (userTrades per symbol, from the last trade
   id seen; on the first connect from `first_recovery_lookback_s` before attach), the orders they
   belong to and the orders believed open, then positions and the balance;
4. push: each recovered fill not pushed before (by trade id) as TradeExecuted, the orders as
   OrderChanged, every symbol's position as PositionChanged, the balance as BalanceChanged;
5. push the buffered events and go on live (a trade seen in both is pushed once).

The connection is replaced (back to 1) when it closes, when listenKeyExpired arrives, when a
keepalive answers -1125 (the key is gone), or when it has been silent for `user_silence_s`: a
silent stream is never trusted, since Binance can stop delivering on a connection that stays
open. The key is kept alive every `keepalive_s` (PUT).

Runs on the stream thread's event loop; REST runs on the stream's own worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from exchange.adapter import ExchangeFill, Order
from exchange.binance_usdm.account_state import AccountState
from exchange.binance_usdm.config import BinanceSettings
from exchange.binance_usdm.credentials import short_key
from exchange.binance_usdm.errors import LISTEN_KEY_GONE, VenueThrottled
from exchange.binance_usdm.history import History
from exchange.binance_usdm.memory import OrderMemory, TradeLedger
from exchange.binance_usdm.payloads import fill_order, num, order_from_rest
from exchange.binance_usdm.rest import BinanceRest, RequestFailed
from exchange.binance_usdm.user_events import AccountEvent, UserEventTranslator
from exchange.binance_usdm.ws import CONNECTION_ERRORS, Backoff, describe, open_ws
from exchange.errors import ExchangeError, OrderNotFound
from exchange.streams import BalanceChanged, OrderChanged, PositionChanged, TradeExecuted

log = logging.getLogger(__name__)
T = TypeVar("T")
Json = dict[str, Any]
_CLOSED = object()
KEEPALIVE_RETRY_S = 60.0


@dataclass
class Resync:
    """What the REST reads after a connect found."""

    fills: list[ExchangeFill]
    orders: list[Order]
    positions: list[Json]
    account: Json
    leverage: dict[str, float]


class UserStream:
    def __init__(self, settings: BinanceSettings, ws_base: str, symbols: list[str], rest: BinanceRest,
                 blocking: Callable[[Callable[[], Any]], Awaitable[Any]], push: Callable[[AccountEvent], None],
                 account: AccountState, memory: OrderMemory, ledger: TradeLedger, since_ms: int) -> None:
        self.settings = settings
        self.ws_base = ws_base
        self.symbols = symbols
        self.rest = rest
        self.blocking = blocking
        self.push = push
        self.account = account
        self.memory = memory
        self.ledger = ledger
        self.since_ms = since_ms
        self.history = History(rest, memory)
        self.translator = UserEventTranslator(account, memory, ledger, settings.account_event_hold_s)
        self.synced = threading.Event()  # set after the first resync (waited on from other threads)
        self.connected = False
        self.connects = 0
        self.resyncs = 0
        self.recovered_fills = 0
        self.silences = 0
        self.expiries = 0
        self.keepalive_failures = 0
        self.errors = 0
        self.last_sync: datetime | None = None
        self.last_reason = ""

    # --- the connection loop ----------------------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff(self.settings)
        while True:
            retry_at = 0.0
            try:
                reason = await self._session()
                backoff.reset()  # the session got as far as a resync: the path works
            except VenueThrottled as exc:
                reason, retry_at = f"REST refused ({exc.code})", exc.retry_at
            except ExchangeError as exc:
                reason = f"REST failed ({exc.code})"
            except CONNECTION_ERRORS as exc:
                reason = f"connection failed: {describe(exc)}"
            finally:
                self.connected = False
            self.last_reason = reason
            log.warning("user stream: %s; reconnecting", reason)
            await backoff.wait()
            if retry_at > time.time():
                await asyncio.sleep(retry_at - time.time())

    async def _session(self) -> str:
        key: str = await self.blocking(self._listen_key)
        async with await open_ws(f"{self.ws_base}/ws/{key}", self.settings) as ws:
            self.connected = True
            self.connects += 1
            queue: asyncio.Queue[Any] = asyncio.Queue()
            reader = asyncio.create_task(self._reader(ws, queue))
            try:
                resync: Resync = await self.blocking(self._read_missed)
                self._apply(resync)
                log.info("user stream live on listenKey %s (connect %d)", short_key(key), self.connects)
                return await self._consume(queue, key)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    @staticmethod
    async def _reader(ws: Any, queue: asyncio.Queue[Any]) -> None:
        try:
            async for raw in ws:
                queue.put_nowait(raw)
        except CONNECTION_ERRORS:
            pass
        finally:
            queue.put_nowait(_CLOSED)

    async def _consume(self, queue: asyncio.Queue[Any], key: str) -> str:
        """Push live events until the connection must be replaced; returns why."""
        silence_s = self.settings.user_silence_s
        last = time.monotonic()
        next_keepalive = last + self.settings.keepalive_s
        while True:
            deadlines = [last + silence_s, next_keepalive]
            held = self.translator.next_deadline()
            if held is not None:
                deadlines.append(held)
            try:
                async with asyncio.timeout(max(0.0, min(deadlines) - time.monotonic())):
                    raw = await queue.get()
            except TimeoutError:
                self._push_all(self.translator.release_due())
                now = time.monotonic()
                if now >= next_keepalive:
                    outcome = await self.blocking(self._keepalive)
                    if outcome == "gone":
                        self.expiries += 1
                        return "listenKey gone (keepalive answered -1125)"
                    next_keepalive = now + (self.settings.keepalive_s if outcome == "ok" else
                                            min(KEEPALIVE_RETRY_S, self.settings.keepalive_s))
                if now - last >= silence_s:
                    self.silences += 1
                    return f"silent for {silence_s:g}s (not trusted)"
                continue
            if raw is _CLOSED:
                return "connection closed"
            last = time.monotonic()
            try:
                event = json.loads(raw)
                if event.get("e") == "listenKeyExpired":
                    if event.get("listenKey", key) == key:
                        self.expiries += 1
                        return "listenKeyExpired"
                    continue
                events = self.translator.translate(event)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.errors += 1
                log.warning("user stream: unreadable event skipped (%s)", type(exc).__name__)
                continue
            self._push_all(events)

    def _push_all(self, events: list[AccountEvent]) -> None:
        for event in events:
            self.push(event)

    # --- REST (on the stream's worker thread) -----------------------------------------------------

    def _listen_key(self) -> str:
        return str(self.rest.request("fapiPrivatePostListenKey")["listenKey"])

    def _keepalive(self) -> str:
        try:
            self.rest.send("fapiPrivatePutListenKey")
            return "ok"
        except RequestFailed as exc:
            self.keepalive_failures += 1
            return "gone" if exc.failure.code == LISTEN_KEY_GONE else "failed"
        except ExchangeError:
            self.keepalive_failures += 1
            return "failed"

    def _read_missed(self) -> Resync:
        fills: list[ExchangeFill] = []
        for symbol in self.symbols:
            last = self.ledger.last_id.get(symbol)
            rows = (self.history.trades(symbol, from_id=last + 1) if last is not None
                    else self.history.trades(symbol, start_ms=self.since_ms))
            fills.extend(self.history.fills(r for r in rows if f"{symbol}-{r['id']}" not in self.ledger))
        # The orders whose state may have moved: those of the recovered fills, and those believed open.
        # One openOrders read per symbol answers for the ones still open; the others are read one by one.
        believed_open = {(k.symbol, k.order_id) for k in self.memory.open_orders()}
        still_open: dict[tuple[str, str], Order] = {}
        for symbol in sorted({s for s, _ in believed_open}):
            for row in self.rest.request("fapiPrivateGetOpenOrders", {"symbol": symbol}):
                order = order_from_rest(row)
                still_open[(order.symbol, order.order_id)] = order
        wanted = ({(f.symbol, f.order_id) for f in fills} | believed_open) - set(still_open)
        orders: list[Order] = list(still_open.values())
        for symbol, order_id in sorted(wanted):
            try:
                orders.append(self.history.order_by_id(symbol, order_id))
            except OrderNotFound:
                self.memory.forget(symbol, order_id)
        positions = self.rest.request("fapiPrivateV3GetPositionRisk")
        account = self.rest.request("fapiPrivateV3GetAccount")
        leverage: dict[str, float] = {}
        if any(s not in self.account.leverage for s in self.symbols):
            rows = self.rest.request("fapiPrivateGetSymbolConfig")
            leverage = {row["symbol"]: num(row.get("leverage")) for row in rows}
        return Resync(fills, orders, positions, account, leverage)

    # --- back on the loop -------------------------------------------------------------------------

    def _apply(self, resync: Resync) -> None:
        events: list[AccountEvent] = []
        recovered = 0
        for fill in sorted(resync.fills, key=fill_order):
            if self.ledger.add(fill):
                recovered += 1
                events.append(TradeExecuted(fill=fill))
        for order in resync.orders:
            self.memory.remember(order, pushed=True)
            events.append(OrderChanged(order=order))
        for symbol, leverage in resync.leverage.items():
            self.account.set_leverage(symbol, leverage)
        self.account.reset(resync.positions, resync.account)
        self.translator.reset()
        now = datetime.now(UTC)
        for symbol in sorted(set(self.symbols) | set(self.account.positions)):
            events.append(PositionChanged(symbol=symbol, position=self.account.position(symbol)))
        # The balance as the venue just answered it (the stream's own arithmetic takes over from here).
        events.append(BalanceChanged(balance=self.account.balance_seed or self.account.balance(now)))
        self.resyncs += 1
        self.recovered_fills += recovered
        self.last_sync = now
        if recovered and self.resyncs > 1:
            log.warning("user stream resync: %d fill(s) made while the stream was down recovered from userTrades",
                        recovered)
        self._push_all(events)
        self.synced.set()
