"""Helpers for state-plane tests: a raw protocol client, message factories.

`RawClient` speaks the ingest protocol byte by byte (it is a second, independent client of the
wire format, the way a client in another language would be), so tests can send frames our
own Sender never would: garbage, wrong frame counts, out-of-order sseqs, exact resends.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import msgpack
import zmq

from bus.messages import (
    REGISTRY,
)
from tests.harness import Instance


def producer_of(msg: dict[str, Any]) -> str:
    """A program allowed to send `msg` (the hub checks): a heartbeat's own actor, else its type's producer."""
    if msg.get("type") == "heartbeat" and isinstance(msg.get("actor"), str):
        return msg["actor"]
    versions = REGISTRY.get(msg.get("type")) if isinstance(msg.get("type"), str) else None
    if not versions:
        return "executor"
    return sorted(next(iter(versions.values())).PRODUCERS)[0]


def envelope(msg: dict[str, Any], *, src: str | None = None, stream: str = "", inc: int = 1, sseq: int = 1,
             oldest: int | None = None, ts: float | None = None) -> bytes:
    """An ingest frame. `src` defaults to a producer allowed to send `msg`; `stream` names a
    sender incarnation of its own (its `inc`), so tests keep their streams apart."""
    return msgpack.packb({"src": producer_of(msg) if src is None else src, "inc": zlib.crc32(stream.encode()) if stream
                          else inc, "sseq": sseq, "oldest": sseq if oldest is None else oldest,
                          "ts": time.time() if ts is None else ts, "msg": msg})


class RawClient:
    """A DEALER on the hub's ingest that sends exact frames and reads the reply arrays."""

    def __init__(self, inst: Instance) -> None:
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(inst.settings.ingest_endpoint)

    def send(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def replies(self, count: int = 1, timeout: float = 10.0) -> list[list[Any]]:
        """The next `count` reply items (a reply frame may carry several)."""
        out: list[list[Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise AssertionError(f"got {len(out)} of {count} replies: {out}")
            out.extend(msgpack.unpackb(self.sock.recv(), raw=False))
        return out

    def ask(self, *frames: bytes, timeout: float = 10.0) -> list[Any]:
        self.send(*frames)
        return self.replies(1, timeout)[0]

    def close(self) -> None:
        self.sock.close(0)
