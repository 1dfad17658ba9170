"""The venue: every component wired together, the market timers, and state snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from decimal import Decimal
from typing import Any

from aiohttp import web

from . import account_payloads, market_payloads
from .auth import Authenticator, KeyRegistry
from .clock import VenueClock
from .config import VenueConfig
from .engine import Engine
from .faults import FaultKind, FaultRegistry
from .listenkeys import ListenKeys
from .market import MarketData
from .numbers import fmt
from .ratelimit import RateLimiter
from .streams import StreamHub

Json = dict[str, Any]
KLINE_PUSH_MS = 250


class Venue:
    """All state lives on one event loop; `changed` (a threading.Condition) wakes waiters elsewhere."""

    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.clock = VenueClock()
        self.faults = FaultRegistry()
        self.clock.drift_ms = self._drift
        self.keys = KeyRegistry(config.keys)
        self.auth = Authenticator(self.keys, self.clock, self.faults)
        self.started_ms = self.clock.now_ms()
        self.market = MarketData(config, self.started_ms)
        self.limiter = RateLimiter(config)
        self.listen_keys = ListenKeys(config.listen_key_ttl_s, self._on_key_expired)
        self.hub = StreamHub(self.listen_keys, self.faults, self.clock, config.ws_ping_interval_s,
                             self._on_subscribe, self.notify)
        self.engine = Engine(config, self.clock, self.market, self.faults, self.hub.publish_user, self.notify)
        self.request_log: deque[Json] = deque(maxlen=config.request_log_size)
        self.changed = threading.Condition()
        self.version = 0
        self._kline_pushed: dict[tuple[str, str], int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # --- wiring ---------------------------------------------------------------------------------

    def _drift(self) -> int:
        fault = self.faults.peek(FaultKind.CLOCK_DRIFT)
        return int(fault.params["offset_ms"]) if fault is not None else 0

    def _on_key_expired(self, lk: Any, notify: bool) -> None:
        self.hub.on_listen_key_expired(lk, notify)

    def _on_subscribe(self, stream: str) -> None:
        symbol, _, rest = stream.partition("@")
        market = self.market.get(symbol.upper())
        if market is not None and rest.startswith("kline_"):
            interval = rest[len("kline_"):]
            if interval in self.market.kline_ms:
                market.track(interval, self.clock.now_ms())

    def notify(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def log_request(self, entry: Json) -> None:
        self.request_log.append(entry)
        self.notify()

    # --- timers ---------------------------------------------------------------------------------

    def start_timers(self) -> None:
        self._tasks = [
            asyncio.create_task(self._tick_loop()),
            asyncio.create_task(self._mark_loop(self.config.mark_price_interval_s, "@markPrice")),
            asyncio.create_task(self._mark_loop(self.config.mark_price_fast_interval_s, "@markPrice@1s")),
        ]

    async def stop_timers(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _tick_loop(self) -> None:
        interval = self.config.tick_interval_s
        next_at = time.monotonic()
        while True:
            self.tick()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def tick(self) -> None:
        """One step of every symbol's walk: close bars, move prices, fill resting orders, push streams."""
        now = self.clock.now_ms()
        for symbol, market in self.market.symbols.items():
            spec = market.spec
            lower = symbol.lower()
            for bar in market.roll(now):
                stream = f"{lower}@kline_{bar.interval}"
                if self.hub.subscribed(stream):
                    self.hub.publish_market(stream, market_payloads.kline_event(spec, bar, now))
            top = market.step(now)
            self.engine.on_tick(symbol)
            stream = f"{lower}@bookTicker"
            if self.hub.subscribed(stream):
                self.hub.publish_market(stream, market_payloads.book_ticker_event(spec, top, now))
            for interval, bars in market.klines.items():
                stream = f"{lower}@kline_{interval}"
                if not bars or not self.hub.subscribed(stream):
                    continue
                last = self._kline_pushed.get((symbol, interval), 0)
                if now - last >= KLINE_PUSH_MS:
                    self._kline_pushed[(symbol, interval)] = now
                    self.hub.publish_market(stream, market_payloads.kline_event(spec, bars[-1], now))

    async def _mark_loop(self, interval: float, suffix: str) -> None:
        while True:
            await asyncio.sleep(interval)
            now = self.clock.now_ms()
            for symbol, market in self.market.symbols.items():
                stream = f"{symbol.lower()}{suffix}"
                if self.hub.subscribed(stream):
                    self.hub.publish_market(stream, market_payloads.mark_price_event(market, now))

    # --- admin actions --------------------------------------------------------------------------

    def set_price(self, symbol: str, bid: Decimal, *, pause: bool = True) -> Json:
        """Move the book so its best bid is `bid` (and pause the walk there, unless pause=False)."""
        market = self.market.get(symbol)
        if market is None:
            raise KeyError(symbol)
        market.paused = pause
        now = self.clock.now_ms()
        top = market.set_bid(bid, now)
        self.engine.on_tick(symbol)
        stream = f"{symbol.lower()}@bookTicker"
        if self.hub.subscribed(stream):
            self.hub.publish_market(stream, market_payloads.book_ticker_event(market.spec, top, now))
        self.notify()
        return market_payloads.book_ticker(market.spec, top)

    def resume_walk(self, symbol: str | None = None) -> None:
        for name, market in self.market.symbols.items():
            if symbol is None or name == symbol:
                market.paused = False

    # --- snapshots ------------------------------------------------------------------------------

    def snapshot(self) -> Json:
        """Plain-data view of the whole venue (what BinanceFake.state() and GET /_fake/state return)."""
        accounts: Json = {}
        for account_id, account in self.engine.accounts.items():
            accounts[account_id] = {
                "balance": fmt(account.balance, 8),
                "available": fmt(self.engine.available(account), 8),
                "unrealized": fmt(self.engine.unrealized(account), 8),
                "dual_side": account.dual_side,
                "leverage": dict(account.leverage),
                "margin_type": dict(account.margin_type),
                "positions": [
                    {"symbol": p.symbol, "positionSide": p.side, "positionAmt": str(p.amount),
                     "entryPrice": str(p.entry_price), "realized": str(p.accumulated_realized)}
                    for p in account.positions.values() if p.amount
                ],
                "orders": [account_payloads.order(self.engine.specs[o.symbol], o) for o in account.orders.values()],
                "trades": [account_payloads.user_trade(self.engine.specs[t.symbol], t) for t in account.trades],
            }
        return {
            "server_time": self.clock.now_ms(),
            "accounts": accounts,
            "books": {s: market_payloads.book_ticker(m.spec, m.top) for s, m in self.market.symbols.items()},
            "marks": {s: fmt(m.mark_price, 8) for s, m in self.market.symbols.items()},
            "listen_keys": [
                {"listenKey": lk.key, "account": lk.account_id, "api_key": lk.api_key, "expired": lk.expired}
                for lk in self.listen_keys.by_key.values()
            ],
            "connections": [
                {"scope": c.scope, "streams": sorted(c.streams), "listen_keys": sorted(c.listen_keys)}
                for c in self.hub.conns
            ],
            "faults": self.faults.describe(),
            "user_events_sent": len(self.hub.sent_user_events),
            "user_events_dropped": len(self.hub.dropped_user_events),
        }


VENUE: web.AppKey[Venue] = web.AppKey("venue", Venue)
