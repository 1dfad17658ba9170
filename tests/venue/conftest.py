"""Fixtures for the fake Binance venue. Every test here talks to loopback only: the guard below
refuses to resolve any other host name, so a misconfigured client fails instead of reaching Binance."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.venue.binance import BinanceFake, VenueConfig
from tests.venue.binance.ccxt_client import make_binanceusdm

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in LOOPBACK:
            raise OSError(f"test venue guard: refusing to resolve non-loopback host {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@dataclass
class Creds:
    api_key: str
    secret: str


def new_creds() -> Creds:
    return Creds(secrets.token_hex(32), secrets.token_hex(32))


FAST = {"tick_interval_s": 0.02, "mark_price_interval_s": 0.3, "mark_price_fast_interval_s": 0.1}


@pytest.fixture
def creds() -> Creds:
    return new_creds()


@pytest.fixture
def venue_config() -> VenueConfig:
    """Override in a test module (or parametrize) to change the venue's configuration."""
    return VenueConfig(**FAST)


@pytest.fixture
def fake(venue_config: VenueConfig, creds: Creds) -> Iterator[BinanceFake]:
    server = BinanceFake(venue_config, keys={creds.api_key: creds.secret}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def exchange(fake: BinanceFake, creds: Creds) -> Any:
    """Sync ccxt binanceusdm pointed at the fake (ccxt's own throttle off, 5 s timeout), markets loaded."""
    client = make_binanceusdm(fake.rest_url, creds.api_key, creds.secret, enableRateLimit=False, timeout=5000)
    client.load_markets()
    return client
