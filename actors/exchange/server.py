"""The RPC server thread: answers adapter calls from the trading actors on a ROUTER socket.

The market clock runs in the actor loop; both take the same lock, so the engine sees one
caller at a time. A request that fails in an unexpected way is answered `error`, logged and
counted, and the server keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import zmq

from bus import codec
from exchange.adapter import ExchangeAdapter
from exchange.rpc import dispatch
from exchange.stream_server import StreamServer

log = logging.getLogger(__name__)

POLL_MS = 200


def _is_stream_snapshot(body: bytes) -> bool:
    # Cheap: the op name appears in the packed request; a false positive only takes the lock.
    return b"stream_snapshot" in body


class RpcServer(threading.Thread):
    def __init__(
        self,
        sock: zmq.Socket,
        adapter: ExchangeAdapter,
        lock: threading.Lock,
        on_request: Callable[[str, str, float], None],
        streams: StreamServer | None = None,
        *,
        lock_requests: bool = True,
    ) -> None:
        super().__init__(name="exchange-rpc", daemon=True)
        self._sock = sock  # bound by the caller, so a bind error stops start-up
        self._adapter = adapter
        self._lock = lock
        self._on_request = on_request
        self._streams = streams  # answers `stream_snapshot` at its sequences
        self._lock_requests = lock_requests  # False: only the stream snapshot takes the lock
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                if not self._sock.poll(POLL_MS, zmq.POLLIN):
                    continue
                frames = self._sock.recv_multipart()
                if len(frames) != 2:
                    continue  # not a DEALER request; nothing sensible to answer
                identity, body = frames
                started = time.perf_counter()
                try:
                    if self._lock_requests or _is_stream_snapshot(body):
                        with self._lock:
                            reply, op, outcome = dispatch(self._adapter, body, self._streams)
                    else:
                        reply, op, outcome = dispatch(self._adapter, body, self._streams)
                except Exception as exc:
                    log.exception("exchange request failed unexpectedly; answered 'error'")
                    reply = codec.pack({"req": None, "ok": False,
                                        "error": {"kind": "error", "code": "internal", "detail": str(exc)[:500]}})
                    op, outcome = "unknown", "internal"
                self._on_request(op, outcome, time.perf_counter() - started)
                try:
                    self._sock.send_multipart([identity, reply], zmq.NOBLOCK)
                except zmq.ZMQError:
                    self._on_request(op, "unroutable", 0.0)
        finally:
            self._sock.close(0)
