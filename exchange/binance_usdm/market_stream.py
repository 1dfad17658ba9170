"""The market stream: one combined connection with, per symbol, `@bookTicker` (best bid/ask and
sizes), `@markPrice@1s` (the mark) and `@kline_<interval>` (bars; x=true closes one).

- BookTicked carries the newest book with the newest mark; at most one per symbol per
  `book_min_interval_s` (a busy book ticks far faster than anyone reacts), the newest always
  going out at the end of the interval.
- BarClosed once per closed bar, oldest first. After a reconnect the bars that closed while the
  stream was down are read over REST and pushed first, so no close is missed.
- `@markPrice@1s` makes every symbol speak at least once a second: a connection silent for
  `market_silence_s` is dead whatever its socket says, and is replaced.

Runs on the stream thread's event loop; `push` is called there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from exchange.adapter import Bar
from exchange.binance_usdm.config import BinanceSettings
from exchange.binance_usdm.payloads import bar_from_kline_event, book_top, num
from exchange.binance_usdm.ws import CONNECTION_ERRORS, HEALTHY_AFTER_S, Backoff, describe, open_ws
from exchange.errors import ExchangeError
from exchange.streams import BarClosed, BookTicked

log = logging.getLogger(__name__)
Json = dict[str, Any]
CATCH_UP_BARS = 100


class MarketStream:
    def __init__(self, settings: BinanceSettings, ws_base: str, symbols: list[str],
                 push: Callable[[BookTicked | BarClosed], None],
                 closed_bars: Callable[[str, int], Awaitable[list[Bar]]],
                 on_mark: Callable[[str, float], None]) -> None:
        self.settings = settings
        self.symbols = symbols
        self.push = push
        self.closed_bars = closed_bars
        self.on_mark = on_mark
        interval = settings.bar_interval
        names = [f"{s.lower()}@{kind}" for s in symbols for kind in ("bookTicker", "markPrice@1s", f"kline_{interval}")]
        self.url = f"{ws_base}/stream?streams={'/'.join(names)}"
        self.books: dict[str, tuple[Any, Any, Any, Any, Any]] = {}
        self.marks: dict[str, float] = {}
        self.last_bar: dict[str, datetime] = {}
        self._last_emit: dict[str, float] = {}
        self._pending: set[str] = set()
        self.connected = False
        self.connects = 0
        self.silences = 0
        self.errors = 0
        self.ready = threading.Event()  # set once the first connection is up (waited on from other threads)

    async def run(self) -> None:
        backoff = Backoff(self.settings)
        while True:
            started = time.monotonic()
            try:
                async with await open_ws(self.url, self.settings) as ws:
                    self.connected = True
                    self.connects += 1
                    if self.connects > 1:
                        await self._catch_up()
                    self.ready.set()
                    await self._read(ws)
            except TimeoutError:
                self.silences += 1
                log.warning("market stream silent for %.1fs: reconnecting", self.settings.market_silence_s)
            except CONNECTION_ERRORS as exc:
                self.errors += 1
                log.warning("market stream connection ended: %s; reconnecting", describe(exc))
            except ExchangeError as exc:
                self.errors += 1
                log.warning("market stream catch-up failed: %s; reconnecting", exc)
            finally:
                self.connected = False
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                backoff.reset()
            await backoff.wait()

    async def _read(self, ws: Any) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races a message.
            async with asyncio.timeout(self.settings.market_silence_s):
                raw = await ws.recv()
            try:
                message = json.loads(raw)
                self.on_message(message.get("data", message))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.errors += 1
                log.warning("market stream: unreadable message skipped (%s)", type(exc).__name__)

    async def _catch_up(self) -> None:
        """Bars that closed while the stream was down (only for symbols that have had one)."""
        for symbol in self.symbols:
            last = self.last_bar.get(symbol)
            if last is None:
                continue
            for bar in await self.closed_bars(symbol, CATCH_UP_BARS):
                self._bar(symbol, bar)

    # --- messages -------------------------------------------------------------------------------

    def on_message(self, data: Json) -> None:
        kind = data.get("e")
        if kind == "bookTicker":
            symbol = data["s"]
            self.books[symbol] = (data["b"], data["B"], data["a"], data["A"], data.get("T") or data.get("E"))
            self._maybe_emit(symbol)
        elif kind == "markPriceUpdate":
            symbol = data["s"]
            mark = num(data["p"])
            if mark > 0:
                self.marks[symbol] = mark
                self.on_mark(symbol, mark)
                self._maybe_emit(symbol)
        elif kind == "kline":
            k = data["k"]
            if k.get("x"):
                self._bar(data["s"], bar_from_kline_event(k))

    def _bar(self, symbol: str, bar: Bar) -> None:
        last = self.last_bar.get(symbol)
        if last is not None and bar.ts <= last:
            return
        self.last_bar[symbol] = bar.ts
        self.push(BarClosed(symbol=symbol, bar=bar))

    def _maybe_emit(self, symbol: str) -> None:
        if symbol not in self.books or symbol not in self.marks or symbol in self._pending:
            return
        now = time.monotonic()
        due = self._last_emit.get(symbol, 0.0) + self.settings.book_min_interval_s
        if now >= due:
            self._emit(symbol)
        else:
            self._pending.add(symbol)
            asyncio.get_running_loop().call_later(due - now, self._flush, symbol)

    def _flush(self, symbol: str) -> None:
        self._pending.discard(symbol)
        self._emit(symbol)

    def _emit(self, symbol: str) -> None:
        bid, bid_qty, ask, ask_qty, ts = self.books[symbol]
        top = book_top(symbol, bid, bid_qty, ask, ask_qty, self.marks[symbol], ts or 0)
        self._last_emit[symbol] = time.monotonic()
        if top is not None:
            self.push(BookTicked(top=top))
