"""Sender: a DEALER to the hub's ingest with a bounded outbox of unacknowledged messages.

Every message gets an id (src, inc, sseq): `src` names the actor, `inc` is this process's
incarnation (start time in ns, so ids never repeat across restarts), `sseq` counts from 1.
A message stays in the outbox until the hub ACKs it (durable in the journal) or NACKs it.
Unacknowledged messages are resent, oldest first, after `resend_after_s` or when the
connection is re-established; the hub drops duplicates, so a resend never applies twice.

Ordering matters: the hub treats any sseq at or below the highest it committed for an
incarnation as a duplicate, so this sender never lets a newer message overtake an older
unsent one (once a send would block, everything queues until the next full resend).

- `send(msg)`: non-blocking. Telemetry is dropped (and counted) when the outbox is full;
  a durable message evicts the oldest telemetry or, failing that, waits for room.
- `send_and_wait(msg)`: blocks until ACK (returns the hub seq) or raises on NACK / timeout.
  On timeout the message stays in the outbox and will still be delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import zmq
from zmq.utils.monitor import recv_monitor_message

from bus import codec
from bus.codec import BusError
from bus.messages import Message
from bus.protocol import ACK, DUPLICATE, NACK, ErrorCode
from bus.sockets import connect
from config.settings import Settings

log = logging.getLogger(__name__)


class OutboxFull(Exception):
    """A durable message found no room within its timeout. Nothing was dropped; retry later."""


@dataclass(slots=True)
class _Pending:
    frame: bytes
    durable: bool
    future: Future[int] | None
    sent_at: float = 0.0


@dataclass(slots=True)
class SenderStats:
    sent: int = 0
    acked: int = 0
    duplicates: int = 0
    nacked: int = 0
    resent: int = 0
    dropped_telemetry: int = 0
    nack_codes: dict[str, int] = field(default_factory=dict)


class Sender:
    def __init__(
        self,
        settings: Settings,
        source: str,
        *,
        endpoint: str | None = None,
        context: zmq.Context | None = None,
        outbox_max: int | None = None,
        resend_after_s: float | None = None,
    ) -> None:
        self.source = source
        self.incarnation = time.time_ns()
        self.endpoint = endpoint or settings.ingest_endpoint
        self._settings = settings
        self._ctx = context or zmq.Context.instance()
        self._outbox_max = outbox_max or settings.sender.outbox_max
        self._resend_after = resend_after_s or settings.sender.resend_after_s
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._outbox: OrderedDict[int, _Pending] = OrderedDict()
        self._to_send: list[int] = []
        self._blocked = True  # until the first successful handshake
        self._next_sseq = 1
        self.stats = SenderStats()
        self.last_nack: BusError | None = None
        self._wake_addr = f"inproc://sender-wake-{id(self)}"
        self._wake_pull = self._ctx.socket(zmq.PULL)
        self._wake_pull.bind(self._wake_addr)
        self._wake_push = self._ctx.socket(zmq.PUSH)
        self._wake_push.setsockopt(zmq.LINGER, 0)
        self._wake_push.connect(self._wake_addr)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sender-{source}", daemon=True)
        self._thread.start()

    # --- caller side ---------------------------------------------------------------------------

    @property
    def outbox_depth(self) -> int:
        return len(self._outbox)

    @property
    def connected(self) -> bool:
        return not self._blocked

    def send(self, msg: Message, *, wait_room_s: float | None = None) -> int | None:
        """Queue `msg`; returns its sseq, or None if it was telemetry dropped for lack of room."""
        return self._enqueue(msg, None, wait_room_s)

    def send_and_wait(self, msg: Message, timeout: float | None = None) -> int:
        """Block until the hub has made `msg` durable; returns its hub seq."""
        timeout = self._settings.sender.ack_timeout_s if timeout is None else timeout
        future: Future[int] = Future()
        deadline = time.monotonic() + timeout
        self._enqueue(msg, future, timeout, durable=True)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            raise TimeoutError(f"no ACK for {msg.TYPE} within {timeout:.1f}s (still queued)") from None

    def flush(self, timeout: float) -> bool:
        """Wait until every queued message is acknowledged; False if some remain."""
        deadline = time.monotonic() + timeout
        with self._room:
            while self._outbox:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(min(left, 0.05))
        return True

    def close(self, flush_timeout: float = 5.0) -> None:
        if self._stop.is_set():
            return
        remaining = 0 if self.flush(flush_timeout) else len(self._outbox)
        if remaining:
            log.warning("sender %s closing with %d unacknowledged messages", self.source, remaining)
        self._stop.set()
        self._wake()
        self._thread.join(timeout=5)
        self._wake_push.close(0)

    def _enqueue(
        self, msg: Message, future: Future[int] | None, wait_room_s: float | None, durable: bool | None = None
    ) -> int | None:
        durable = msg.DURABLE if durable is None else durable
        with self._room:
            sseq = self._next_sseq
            frame = codec.encode_envelope(self.source, self.incarnation, sseq, msg)
            deadline = None if wait_room_s is None else time.monotonic() + wait_room_s
            while len(self._outbox) >= self._outbox_max:
                if not durable:
                    self.stats.dropped_telemetry += 1
                    return None
                if self._evict_oldest_telemetry():
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise OutboxFull(f"outbox full ({self._outbox_max}) and no ACKs within {wait_room_s}s")
                self._room.wait(0.1 if left is None else min(left, 0.1))
            self._next_sseq += 1
            self._outbox[sseq] = _Pending(frame, durable, future)
            self._to_send.append(sseq)
            self._wake_push.send(b"", zmq.NOBLOCK)
        return sseq

    def _evict_oldest_telemetry(self) -> bool:
        for sseq, pending in self._outbox.items():
            if not pending.durable:
                del self._outbox[sseq]
                self.stats.dropped_telemetry += 1
                return True
        return False

    def _wake(self) -> None:
        with self._lock:
            try:
                self._wake_push.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass

    # --- I/O thread ----------------------------------------------------------------------------

    def _open(self) -> tuple[zmq.Socket, zmq.Socket]:
        sock = connect(self._ctx, zmq.DEALER, self.endpoint, self._settings)
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        return sock, monitor

    def _run(self) -> None:
        sock, monitor = self._open()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        poller.register(self._wake_pull, zmq.POLLIN)
        tick_ms = max(10, int(self._resend_after * 250))
        want_out = False
        try:
            while not self._stop.is_set():
                with self._lock:
                    out = self.connected and bool(self._to_send)
                if out != want_out:
                    poller.modify(sock, zmq.POLLIN | (zmq.POLLOUT if out else 0))
                    want_out = out
                events = dict(poller.poll(tick_ms))
                if monitor in events:
                    self._on_monitor(monitor)
                if self._wake_pull in events:
                    while True:
                        try:
                            self._wake_pull.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                if events.get(sock, 0) & zmq.POLLIN:
                    self._on_replies(sock)
                self._resend_if_overdue()
                self._transmit(sock)
        finally:
            sock.disable_monitor()
            monitor.close(0)
            sock.close(0)
            self._wake_pull.close(0)

    def _on_monitor(self, monitor: zmq.Socket) -> None:
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            with self._lock:
                if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    # A new connection: whatever was in flight on the old one may be lost.
                    self._blocked = False
                    self._queue_everything()
                elif event["event"] == zmq.EVENT_DISCONNECTED:
                    self._blocked = True

    def _queue_everything(self) -> None:
        """Queue every unacknowledged message again, oldest first (caller holds the lock)."""
        self.stats.resent += sum(1 for p in self._outbox.values() if p.sent_at)
        for pending in self._outbox.values():
            pending.sent_at = 0.0
        self._to_send = list(self._outbox)

    def _resend_if_overdue(self) -> None:
        with self._lock:
            if self._blocked or not self._outbox:
                return
            oldest = next(iter(self._outbox.values()))
            if oldest.sent_at and time.monotonic() - oldest.sent_at >= self._resend_after:
                self._queue_everything()

    def _transmit(self, sock: zmq.Socket) -> None:
        """Send queued messages in sseq order until the pipe is full (HWM) or the queue is empty."""
        with self._lock:
            if self._blocked or not self._to_send:
                return
            queue, self._to_send = self._to_send, []
            frames = [(s, self._outbox[s]) for s in queue if s in self._outbox]
        now = time.monotonic()
        for index, (_sseq, pending) in enumerate(frames):
            try:
                sock.send(pending.frame, zmq.NOBLOCK)
            except zmq.Again:
                # Pipe full or peer gone: keep the rest, in order, for the next POLLOUT/handshake.
                with self._lock:
                    self._to_send = [s for s, _p in frames[index:]] + self._to_send
                return
            pending.sent_at = now
            self.stats.sent += 1

    def _on_replies(self, sock: zmq.Socket) -> None:
        while True:
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                replies = codec.unpack(frame)
            except BusError:
                log.error("sender %s: unreadable reply from hub", self.source)
                continue
            if isinstance(replies, list):
                self._settle(replies)

    def _settle(self, replies: list[object]) -> None:
        done: list[tuple[Future[int], int | BusError]] = []
        with self._room:
            for item in replies:
                if not isinstance(item, list) or len(item) < 3:
                    continue
                kind, sseq = item[0], item[1]
                pending = self._outbox.pop(sseq, None) if isinstance(sseq, int) else None
                if kind in (ACK, DUPLICATE):
                    if pending is None:
                        continue
                    if kind == ACK:
                        self.stats.acked += 1
                    else:
                        self.stats.duplicates += 1
                    if pending.future is not None:
                        done.append((pending.future, int(item[2])))
                elif kind == NACK and len(item) >= 5:
                    code = str(item[2])
                    self.stats.nacked += 1
                    self.stats.nack_codes[code] = self.stats.nack_codes.get(code, 0) + 1
                    try:
                        err = BusError(ErrorCode(code), str(item[4]), item[3])
                    except ValueError:
                        err = BusError(ErrorCode.MALFORMED, f"{code}: {item[4]}", item[3])
                    self.last_nack = err
                    log.warning("sender %s: NACK sseq=%s %s", self.source, sseq, err)
                    if pending is not None and pending.future is not None:
                        done.append((pending.future, err))
            self._room.notify_all()
        for future, result in done:
            if isinstance(result, BusError):
                future.set_exception(result)
            else:
                future.set_result(result)
