"""Fixtures for the Binance USDⓈ-M adapter, run against the fake venue on 127.0.0.1 only.

The fake venue's fixtures (and its guard refusing to resolve any non-loopback host) come from
tests/venue/conftest.py. `adapter` is checked (check_account passed) and closed after the test;
`sink` records every event the streams push and lets a test wait for one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from exchange.binance_usdm import ApiCredentials, BinanceSettings, BinanceUsdmAdapter
from exchange.streams import BarClosed, BookTicked, OrderChanged, PositionChanged, TradeExecuted
from tests.venue.binance import BinanceFake, VenueConfig
from tests.venue.conftest import FAST, Creds, creds, fake, loopback_only, new_creds, venue_config

__all__ = ["FAST", "Creds", "creds", "fake", "loopback_only", "new_creds", "venue_config"]

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
Event = Any


def fast_settings(fake: BinanceFake, **overrides: Any) -> BinanceSettings:
    """Settings pointed at the fake, with timings short enough for tests."""
    base: dict[str, Any] = {
        "network": "testnet", "rest_url": fake.rest_url, "ws_url": fake.ws_url, "ccxt_throttle": False,
        "timeout_s": 2.0, "recv_window_ms": 1000, "lookup_backoff_s": 0.05, "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3, "book_min_interval_s": 0.0, "market_silence_s": 5.0, "user_silence_s": 30.0,
        "ws_open_timeout_s": 3.0,
    }
    return BinanceSettings(**{**base, **overrides})


def make_adapter(fake: BinanceFake, creds: Creds | None, check: bool = True, symbols: list[str] | None = None,
                 **overrides: Any) -> BinanceUsdmAdapter:
    credentials = ApiCredentials(api_key=creds.api_key, secret=creds.secret) if creds is not None else None
    adapter = BinanceUsdmAdapter(fast_settings(fake, **overrides), symbols or SYMBOLS, credentials)
    if check:
        adapter.check_account(leverage=10, margin_type="CROSSED")
    return adapter


class RecordingSink:
    """Records pushed events (from the stream thread); tests wait on a predicate, never sleep."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self.threads: set[str] = set()

    def market(self, event: BookTicked | BarClosed) -> None:
        self._add(event)

    def account(self, event: Event) -> None:
        self._add(event)

    def _add(self, event: Event) -> None:
        with self._cond:
            self.threads.add(threading.current_thread().name)
            self.events.append(event)
            self._cond.notify_all()

    def snapshot(self) -> list[Event]:
        with self._cond:
            return list(self.events)

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = 10.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kinds = [getattr(e, "kind", "?") for e in self.events[-20:]]
                    raise TimeoutError(f"condition not met in {timeout}s; last events: {kinds}")
                self._cond.wait(remaining)
            return list(self.events)

    # --- views ----------------------------------------------------------------------------------

    def account_events(self) -> list[Event]:
        return [e for e in self.snapshot() if not isinstance(e, BookTicked | BarClosed)]

    def trades(self, client_order_id: str | None = None) -> list[TradeExecuted]:
        return [e for e in self.snapshot() if isinstance(e, TradeExecuted)
                and (client_order_id is None or e.fill.client_order_id == client_order_id)]

    def orders(self, client_order_id: str) -> list[OrderChanged]:
        return [e for e in self.snapshot()
                if isinstance(e, OrderChanged) and e.order.client_order_id == client_order_id]

    def positions(self, symbol: str) -> list[PositionChanged]:
        return [e for e in self.snapshot() if isinstance(e, PositionChanged) and e.symbol == symbol]


def traded(client_order_id: str, qty: float) -> Callable[[list[Event]], bool]:
    """True once the trades pushed for the order add up to `qty`."""
    def done(events: list[Event]) -> bool:
        total = sum(e.fill.qty for e in events if isinstance(e, TradeExecuted)
                    and e.fill.client_order_id == client_order_id)
        return total >= qty - 1e-9

    return done


@pytest.fixture
def adapter(fake: BinanceFake, creds: Creds) -> Iterator[BinanceUsdmAdapter]:
    instance = make_adapter(fake, creds)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def live(adapter: BinanceUsdmAdapter, sink: RecordingSink) -> BinanceUsdmAdapter:
    """The checked adapter with its streams attached to `sink` and in sync."""
    adapter.attach(sink)
    assert adapter.wait_streams(10.0), "streams did not come up"
    return adapter


def fast_venue(**overrides: Any) -> VenueConfig:
    return VenueConfig(**{**FAST, **overrides})
