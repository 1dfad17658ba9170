"""The stream thread: its own asyncio event loop running the market and user streams, and one
worker thread for the blocking REST reads the streams need (the loop keeps reading meanwhile).

Every sink call happens on this thread, one at a time, in the order the events happened. The
sink is the caller's: if it shares state with other threads, it takes the caller's lock. A
sink that raises loses that one event for itself (logged, counted); the streams go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from exchange.streams import (
    BalanceChanged,
    BarClosed,
    BookTicked,
    NullSink,
    OrderChanged,
    PositionChanged,
    StreamSink,
    TradeExecuted,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
RESTART_AFTER_CRASH_S = 1.0
STOP_ROUNDS = 20
STOP_ROUND_S = 0.1


class SinkPusher:
    """Hands events to the attached sink, counting them; a failing sink never stops a stream."""

    def __init__(self) -> None:
        self.sink: StreamSink = NullSink()
        self.market_events = 0
        self.account_events = 0
        self.sink_errors = 0

    def market(self, event: BookTicked | BarClosed) -> None:
        self.market_events += 1
        try:
            self.sink.market(event)
        except Exception:
            self.sink_errors += 1
            log.exception("the sink failed on a %s event", event.kind)

    def account(self, event: OrderChanged | TradeExecuted | PositionChanged | BalanceChanged) -> None:
        self.account_events += 1
        try:
            self.sink.account(event)
        except Exception:
            self.sink_errors += 1
            log.exception("the sink failed on a %s event", event.kind)


class StreamThread:
    def __init__(self, name: str = "binance-streams") -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-rest")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._jobs: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []

    def add(self, name: str, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A coroutine (factory) to run forever on the loop; restarted if it ever crashes."""
        self._jobs.append((name, job))

    async def blocking(self, fn: Callable[[], T]) -> T:
        """Run a blocking call (REST) on the stream's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._started.wait(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(self._supervise(name, job), name=name) for name, job in self._jobs]
        self._started.set()
        await self._stop.wait()
        pending = set(tasks)
        for _ in range(STOP_ROUNDS):
            # Cancel again until every task has ended: a cancel can be lost in a library's race.
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=STOP_ROUND_S)
            if not pending:
                return
        log.warning("streams %s did not stop when cancelled", sorted(t.get_name() for t in pending))

    @staticmethod
    async def _supervise(name: str, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream %s crashed; restarting it", name)
            await asyncio.sleep(RESTART_AFTER_CRASH_S)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the streams and the thread. Do not call it while holding a lock the sink takes: the
        stream thread may be waiting for that lock (the join would then time out after `timeout`)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("stream thread %s did not stop within %.1fs", self.name, timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)
