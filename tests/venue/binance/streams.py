"""Websockets: the user-data stream (/ws/<listenKey>) and market streams (raw /ws/<stream>, combined
/stream?streams=a/b, live SUBSCRIBE/UNSUBSCRIBE), as Binance's fstream host serves them.

A stream name without "@" is a listenKey (Binance also accepts listenKeys in combined streams).
Market stream names: <symbol>@bookTicker, <symbol>@markPrice, <symbol>@markPrice@1s,
<symbol>@kline_<interval>; symbols are matched case-insensitively.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .account_payloads import listen_key_expired
from .clock import VenueClock
from .faults import FaultKind, FaultRegistry
from .listenkeys import ListenKey, ListenKeys

Json = dict[str, Any]


def normalize_stream(name: str) -> str:
    """Lower-case the symbol part, keep the rest ("BTCUSDT@bookTicker" -> "btcusdt@bookTicker")."""
    symbol, sep, rest = name.partition("@")
    return f"{symbol.lower()}{sep}{rest}" if sep else name


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    combined: bool
    transport: asyncio.BaseTransport | None = None
    streams: set[str] = field(default_factory=set)
    listen_keys: set[str] = field(default_factory=set)
    queue: asyncio.Queue[Json | None] = field(default_factory=asyncio.Queue)

    @property
    def scope(self) -> str:
        return "user" if self.listen_keys else "market"

    def push(self, stream: str, payload: Json) -> None:
        self.queue.put_nowait({"stream": stream, "data": payload} if self.combined else payload)


class StreamHub:
    def __init__(self, listen_keys: ListenKeys, faults: FaultRegistry, clock: VenueClock, ping_interval_s: float,
                 on_subscribe: Callable[[str], None], on_event: Callable[[], None]) -> None:
        self.listen_keys = listen_keys
        self.faults = faults
        self.clock = clock
        self.ping_interval_s = ping_interval_s
        self.on_subscribe = on_subscribe
        self.on_event = on_event
        self.conns: set[Conn] = set()
        self.sent_user_events: list[tuple[str, Json]] = []
        self.dropped_user_events: list[tuple[str, Json]] = []

    # --- publishing -----------------------------------------------------------------------------

    def publish_user(self, account_id: str, payload: Json) -> None:
        """Deliver a user-data event to the account's active listenKey's connections (if any)."""
        lk = self.listen_keys.active_for(account_id)
        if lk is None:
            self.dropped_user_events.append((account_id, payload))
            return
        if self.faults.take(FaultKind.USER_STREAM_SILENT, api_key=lk.api_key) is not None:
            self.dropped_user_events.append((account_id, payload))
            self.on_event()
            return
        for conn in self.conns:
            if lk.key in conn.listen_keys:
                conn.push(lk.key, payload)
        self.sent_user_events.append((account_id, payload))
        del self.sent_user_events[:-2000]
        del self.dropped_user_events[:-2000]
        self.on_event()

    def on_listen_key_expired(self, lk: ListenKey, notify: bool) -> None:
        if notify:
            event = listen_key_expired(lk.key, self.clock.now_ms())
            for conn in self.conns:
                if lk.key in conn.listen_keys:
                    conn.push(lk.key, event)
        self.on_event()

    def publish_market(self, stream: str, payload: Json) -> None:
        for conn in self.conns:
            if stream in conn.streams:
                conn.push(stream, payload)

    def subscribed(self, stream: str) -> bool:
        return any(stream in conn.streams for conn in self.conns)

    def all_streams(self) -> set[str]:
        out: set[str] = set()
        for conn in self.conns:
            out |= conn.streams
        return out

    async def drop(self, scope: str = "all") -> int:
        """Close matching connections now (code 1006-like abrupt close: the TCP connection is dropped)."""
        victims = [c for c in self.conns if scope == "all" or c.scope == scope]
        for conn in victims:
            self.conns.discard(conn)
            conn.queue.put_nowait(None)
            if conn.transport is not None:
                conn.transport.close()
        self.on_event()
        return len(victims)

    async def close_all(self) -> None:
        for conn in list(self.conns):
            self.conns.discard(conn)
            conn.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await conn.ws.close()

    # --- handlers -------------------------------------------------------------------------------

    def _add_streams(self, conn: Conn, names: list[str]) -> None:
        for raw in names:
            if not raw:
                continue
            if "@" in raw:
                name = normalize_stream(raw)
                conn.streams.add(name)
                self.on_subscribe(name)
            else:
                conn.listen_keys.add(raw)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        combined = request.path.rstrip("/").endswith("/stream")
        names = request.query.get("streams", "").split("/") if combined else [p for p in tail.split("/") if p]
        scope = "user" if any(n and "@" not in n for n in names) else "market"
        if self.faults.take(FaultKind.WS_REFUSE, scope=scope) is not None:
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(heartbeat=self.ping_interval_s, autoping=True)
        await ws.prepare(request)
        conn = Conn(ws, combined, request.transport)
        self._add_streams(conn, names)
        self.conns.add(conn)
        self.on_event()
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._command(conn, msg.data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.conns.discard(conn)
            conn.queue.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            self.on_event()
        return ws

    async def _writer(self, conn: Conn) -> None:
        while True:
            payload = await conn.queue.get()
            if payload is None or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(json.dumps(payload, separators=(",", ":")))
            except (ConnectionResetError, RuntimeError):
                return

    async def _command(self, conn: Conn, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, as on Binance's market stream connections."""
        try:
            request = json.loads(text)
            method = request["method"]
            request_id = request.get("id")
        except (ValueError, KeyError, TypeError):
            await conn.ws.send_str(json.dumps({"code": 3, "msg": "Invalid JSON: expected a request object"}))
            return
        params = request.get("params") or []
        if method == "SUBSCRIBE":
            self._add_streams(conn, [str(p) for p in params])
            result: Any = None
        elif method == "UNSUBSCRIBE":
            for name in params:
                conn.streams.discard(normalize_stream(str(name)))
                conn.listen_keys.discard(str(name))
            result = None
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(conn.streams | conn.listen_keys)
        else:
            await conn.ws.send_str(json.dumps({"code": 2, "msg": f"Invalid request: unknown method {method}",
                                               "id": request_id}))
            return
        await conn.ws.send_str(json.dumps({"result": result, "id": request_id}))
