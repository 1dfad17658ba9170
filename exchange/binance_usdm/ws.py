"""Websocket plumbing shared by the market and user streams: connecting, reading with a silence
deadline, and the reconnect back-off.

We use the `websockets` library directly rather than ccxt.pro: the streams must expose exactly
the moments ccxt.pro hides (every (re)connect, to resync over REST before trusting the stream
again; listenKey expiry and keepalive failures; silence), buffer events while that resync
runs, and keep Binance's raw events (ccxt.pro's caches reshape and may coalesce them).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from exchange.binance_usdm.config import BinanceSettings
from exchange.binance_usdm.credentials import quiet_logger

WS_LOGGER = "exchange.binance_usdm.ws"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
HEALTHY_AFTER_S = 30.0  # a connection that lasted this long resets the back-off

# What ending a connection looks like: closed by either side, refused handshake, network errors.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (websockets.exceptions.WebSocketException, OSError,
                                                     asyncio.IncompleteReadError)


async def open_ws(url: str, settings: BinanceSettings) -> ClientConnection:
    """A connection whose pings (every ws_ping_interval_s) also detect a dead TCP connection."""
    return await websockets.connect(
        url, open_timeout=settings.ws_open_timeout_s, ping_interval=settings.ws_ping_interval_s,
        ping_timeout=settings.ws_ping_interval_s, close_timeout=2.0, max_size=MAX_MESSAGE_BYTES,
        logger=quiet_logger(WS_LOGGER), compression=None,
    )


class Backoff:
    """Exponential back-off with jitter between reconnects."""

    def __init__(self, settings: BinanceSettings) -> None:
        self.min_s = settings.reconnect_min_s
        self.max_s = settings.reconnect_max_s
        self._next = self.min_s

    def reset(self) -> None:
        self._next = self.min_s

    async def wait(self) -> None:
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self.max_s, self._next * 2)
        await asyncio.sleep(delay)


def describe(exc: BaseException) -> str:
    """A connection error in a few words (never a URL: a user-stream URL holds the listenKey)."""
    name = type(exc).__name__
    code: Any = getattr(getattr(exc, "response", None), "status_code", None)
    if code is not None:
        return f"{name} (HTTP {code})"
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return f"{name} (close code {rcvd.code})"
    return name

