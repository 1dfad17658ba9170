"""BinanceFake: the venue on 127.0.0.1 in a background thread with its own event loop.

Every method that touches venue state runs on that loop (marshalled with
run_coroutine_threadsafe), so tests may call them from their own thread at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web

from .app import build_app
from .config import KeySpec, VenueConfig
from .faults import Fault, FaultKind
from .venue import Venue

T = TypeVar("T")
HOST = "127.0.0.1"


class BinanceFake:
    """A Binance USDⓈ-M compatible server for tests (REST, websockets, admin, fault switch).

    >>> fake = BinanceFake(keys={"key": "secret"}).start()
    >>> fake.rest_url, fake.ws_url          # http://127.0.0.1:PORT, ws://127.0.0.1:PORT
    >>> fake.stop()
    """

    def __init__(self, config: VenueConfig | None = None, *, keys: dict[str, str] | None = None,
                 port: int = 0, **overrides: Any) -> None:
        base = config or VenueConfig()
        extra = [KeySpec(api_key=k, secret=s) for k, s in (keys or {}).items()]
        self.config = VenueConfig.model_validate(
            {**base.model_dump(), **overrides, "keys": [*base.model_dump()["keys"], *(k.model_dump() for k in extra)]}
        )
        self.port = port
        self.venue: Venue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._error: BaseException | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> BinanceFake:
        self._thread = threading.Thread(target=self._run, name="binance-fake", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("BinanceFake did not start in time")
        if self._error is not None:
            raise RuntimeError("BinanceFake failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._stopped.set()

    async def _serve(self) -> None:
        self.venue = Venue(self.config)
        app = build_app(self.venue)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self.venue.start_timers()
        self._stop_requested = asyncio.Event()
        self._ready.set()
        await self._stop_requested.wait()
        await self.venue.stop_timers()
        await self.venue.hub.close_all()
        await self._runner.cleanup()
        # Handlers still holding a lost response (the order_unknown "timeout" mode) end here.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._stopped.is_set():
            return
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._stop_requested.set)
        self._stopped.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> BinanceFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    # --- running code on the venue's loop ---------------------------------------------------------

    def call(self, fn: Callable[[Venue], T], timeout: float = 10.0) -> T:
        """Run `fn(venue)` on the venue's loop and return its result."""
        async def run() -> T:
            assert self.venue is not None
            return fn(self.venue)

        return self._submit(run(), timeout)

    def _submit(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("BinanceFake is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- inspection -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything: accounts (balance, positions, orders, trades), books, marks, keys, faults."""
        return self.call(lambda v: copy.deepcopy(v.snapshot()))

    def account_id(self, api_key: str) -> str:
        key = self.call(lambda v: v.keys.get(api_key))
        if key is None:
            raise KeyError(api_key)
        return key.account_id

    def _account_state(self, api_key: str) -> dict[str, Any]:
        account = self.account_id(api_key)
        return self.state()["accounts"].get(account, {"orders": [], "trades": [], "positions": [],
                                                       "balance": None})

    def orders(self, api_key: str) -> list[dict[str, Any]]:
        return self._account_state(api_key)["orders"]

    def trades(self, api_key: str) -> list[dict[str, Any]]:
        return self._account_state(api_key)["trades"]

    def positions(self, api_key: str) -> list[dict[str, Any]]:
        return self._account_state(api_key)["positions"]

    def balance(self, api_key: str) -> str | None:
        return self._account_state(api_key)["balance"]

    def request_log(self) -> list[dict[str, Any]]:
        return self.call(lambda v: copy.deepcopy(list(v.request_log)))

    def user_events(self, api_key: str, *, dropped: bool = False) -> list[dict[str, Any]]:
        """User-data events the venue delivered (or, with dropped=True, dropped) for the key's account."""
        account = self.account_id(api_key)

        def pick(v: Venue) -> list[dict[str, Any]]:
            events = v.hub.dropped_user_events if dropped else v.hub.sent_user_events
            return copy.deepcopy([payload for acc, payload in events if acc == account])

        return self.call(pick)

    def wait_until(self, predicate: Callable[[Venue], bool], timeout: float = 10.0) -> None:
        """Block until `predicate(venue)` (evaluated on the venue's loop) is true, woken by state changes."""
        assert self.venue is not None
        deadline = time.monotonic() + timeout
        changed = self.venue.changed
        while True:
            with changed:
                seen = self.venue.version
            if self.call(predicate):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("condition not reached before the timeout")
            with changed:
                if self.venue.version == seen:
                    changed.wait(min(remaining, 1.0))

    # --- keys, prices, faults -------------------------------------------------------------------

    def add_key(self, api_key: str, secret: str, *, account: str | None = None, enable_futures: bool = True,
                enable_reading: bool = True) -> None:
        key = KeySpec(api_key=api_key, secret=secret, account=account, enable_futures=enable_futures,
                      enable_reading=enable_reading)
        self.call(lambda v: v.keys.add(key))

    def set_key_permissions(self, api_key: str, **permissions: bool) -> None:
        self.call(lambda v: v.keys.set_permissions(api_key, **permissions))

    def set_price(self, symbol: str, bid: Decimal | str | float, *, pause: bool = True) -> dict[str, Any]:
        """Put the best bid at `bid` (the walk pauses there unless pause=False); crossed orders fill."""
        return self.call(lambda v: v.set_price(symbol, Decimal(str(bid)), pause=pause))

    def resume_walk(self, symbol: str | None = None) -> None:
        self.call(lambda v: v.resume_walk(symbol))

    def book(self, symbol: str) -> dict[str, Any]:
        return self.state()["books"][symbol]

    def arm(self, kind: FaultKind | str, *, count: int | None = None, seconds: float | None = None,
            **params: Any) -> int:
        """Arm a fault (see faults.FaultKind); returns its id for clear()."""
        def arm(v: Venue) -> Fault:
            fault = v.faults.arm(kind, count=count, seconds=seconds, **params)
            v.notify()
            return fault

        return self.call(arm).id

    def clear(self, fault_id: int | None = None, kind: FaultKind | str | None = None) -> int:
        return self.call(lambda v: v.faults.clear(fault_id, kind))

    def faults(self) -> list[dict[str, Any]]:
        return self.call(lambda v: v.faults.describe())

    def expire_listen_keys(self, api_key: str | None = None, *, notify: bool = True) -> list[str]:
        """Expire listenKeys now (all, or the key's account's): listenKeyExpired is sent, then silence."""
        def expire(v: Venue) -> list[str]:
            account = None
            if api_key is not None:
                key = v.keys.get(api_key)
                account = key.account_id if key is not None else api_key
            return v.listen_keys.expire_all(account, notify)

        return self.call(expire)

    def drop_connections(self, scope: str = "all") -> int:
        """Drop websocket connections now (scope: all, user or market)."""
        assert self.venue is not None
        venue = self.venue
        return self._submit(venue.hub.drop(scope), 10.0)

    def connections(self) -> list[dict[str, Any]]:
        return self.state()["connections"]
