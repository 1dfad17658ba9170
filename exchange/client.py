"""`RpcExchange`: the `ExchangeAdapter` interface, answered by an exchange process over ZeroMQ.

One DEALER per client, one request at a time, lazy-pirate on timeout: a request that gets no
answer in `timeout_s` closes the socket (a late reply must never be taken for the next
request's) and raises `ExchangeUnavailable`. Not thread-safe: one client per thread.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import zmq

from bus import codec
from bus.codec import BusError
from bus.sockets import client_socket
from config.settings import Settings
from exchange.adapter import (
    Balance,
    Bar,
    BookTop,
    ExchangeAdapter,
    ExchangeFill,
    ExchangePosition,
    Instrument,
    Order,
    OrderRequest,
)
from exchange.errors import ERROR_KINDS, ExchangeError, ExchangeUnavailable
from exchange.rpc import MAX_REPLY_BYTES, OPS
from exchange.streams import ExchangeSnapshot, StreamSnapshot


class RpcExchange(ExchangeAdapter):
    def __init__(self, settings: Settings, *, timeout_s: float | None = None,
                 context: zmq.Context | None = None) -> None:
        self._settings = settings
        self.endpoint = settings.exchange_endpoint
        self.timeout_s = timeout_s or settings.exchange.timeout_s
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._ids = itertools.count(1)
        self._instruments: dict[str, Instrument] | None = None

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            sock = client_socket(self._ctx, zmq.DEALER, self.endpoint, self._settings)
            # Queue the request even before the connection completes: the timeout bounds the wait.
            # (Set before connect: changing IMMEDIATE on a connected socket trips a libzmq assert
            # when the peer reconnects.)
            sock.setsockopt(zmq.IMMEDIATE, 0)
            sock.connect(self.endpoint)
            self._sock = sock
        return self._sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def call(self, op: str, **args: Any) -> Any:
        spec = OPS[op]
        sock = self._socket()
        req = next(self._ids)
        sock.send(codec.pack({"op": op, "req": req, "args": args}))
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                self._reset()
                raise ExchangeUnavailable("timeout", f"{op}: no answer from {self.endpoint} in {self.timeout_s}s")
            try:
                reply = codec.unpack(sock.recv(), max_bytes=MAX_REPLY_BYTES)
            except BusError as err:
                self._reset()
                raise ExchangeUnavailable("bad_reply", f"{op}: {err.detail}") from None
            if isinstance(reply, dict) and reply.get("req") == req:
                break
        if reply.get("ok"):
            return spec.result.validate_python(reply.get("result"))
        error = reply.get("error") or {}
        cls = ERROR_KINDS.get(str(error.get("kind")), ExchangeError)
        raise cls(str(error.get("code", "error")), str(error.get("detail", "")))

    def close(self) -> None:
        self._reset()

    # --- the adapter interface -------------------------------------------------------------------

    def ping(self) -> bool:
        return self.call("ping") == "pong"

    def instruments(self) -> dict[str, Instrument]:
        if self._instruments is None:  # static per exchange process; cached
            self._instruments = self.call("instruments")
        return self._instruments

    def fetch_tops(self, symbols: Iterable[str]) -> dict[str, BookTop]:
        return self.call("fetch_tops", symbols=list(symbols))

    def fetch_bars(self, symbol: str, limit: int) -> list[Bar]:
        return self.call("fetch_bars", symbol=symbol, limit=limit)

    def fetch_balance(self) -> Balance:
        return self.call("fetch_balance")

    def fetch_positions(self) -> list[ExchangePosition]:
        return self.call("fetch_positions")

    def place_order(self, request: OrderRequest) -> Order:
        return self.call("place_order", request=request.model_dump(mode="json"))

    def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        return self.call("cancel_order", symbol=symbol, client_order_id=client_order_id)

    def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        return self.call("fetch_order", symbol=symbol, client_order_id=client_order_id)

    def fetch_orders(self, symbol: str, client_order_id_prefix: str = "", open_only: bool = False) -> list[Order]:
        return self.call("fetch_orders", symbol=symbol, client_order_id_prefix=client_order_id_prefix,
                         open_only=open_only)

    def fetch_fills(
        self, since: datetime | None = None, symbol: str | None = None, limit: int = 1000
    ) -> list[ExchangeFill]:
        return self.call("fetch_fills", since=since.isoformat() if since else None, symbol=symbol, limit=limit)

    def snapshot(self) -> ExchangeSnapshot:
        return self.call("snapshot")

    def stream_snapshot(self) -> StreamSnapshot:
        """The gateway's state at its stream sequences (how a stream consumer resyncs)."""
        return self.call("stream_snapshot")


def connect_exchange(settings: Settings) -> ExchangeAdapter:
    """The exchange as the trading actors and the CLI see it: always the gateway's RPC.

    Whatever `settings.exchange.adapter` names (the paper engine or a venue), only the gateway
    hosts it: one process holds the venue's keys, rate-limit counters and streams, so every other
    process goes through the gateway rather than opening a venue connection of its own."""
    if settings.exchange.adapter in ("paper", "binance_usdm"):
        return RpcExchange(settings)
    raise ExchangeError("unknown_adapter", settings.exchange.adapter)
