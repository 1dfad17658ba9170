"""Sender: a DEALER to the hub's ingest with a bounded outbox of unanswered messages.

Every message gets an id (src, inc, sseq): `src` names the actor, `inc` is this process's
incarnation (start time in ns, so ids never repeat across restarts), `sseq` counts from 1.
A message stays in the outbox until the hub answers it: ACK (durable in the journal),
duplicate (already committed) or NACK (refused, never applied).

Ordering (docs/bus_protocol.md, "identity and order"): the hub treats any sseq at or below
the highest it committed for (src, inc) as a duplicate, so a newer message must never be
committed while an older one is still on its way. The sender cannot see a silent reconnect
between two sends, so it does not rely on being first: every frame carries `oldest`, the
lowest sseq still in this outbox. The hub commits sseq only if it has answered everything
before it, or if `oldest == sseq`; otherwise it answers "out of order" and applies nothing.
On that answer, or when the oldest message is overdue, the sender rewinds: it sends the
oldest message alone (which `oldest == sseq` always admits), waits for its answer, then
sends the rest in order. On a new connection it resends everything unanswered, in order.

A message too large for one frame (`bus.max_frame_bytes`) is refused at once with
`BusError(frame_too_large)` by every method below; it is never queued.

- `send(msg)`: non-blocking. Telemetry is admitted while the outbox is less than half full
  and dropped (and counted) beyond that, so half the outbox is always there for durable
  messages, however long the hub is away. A durable message may fill the outbox; when it is
  full it evicts the oldest telemetry already sent or, failing that, waits for room
  (telemetry never sent is not evicted: that would leave a gap in the sseqs).
- `send_and_wait(msg)`: blocks until answered; returns the hub seq, raises `BusError` on
  NACK and `TimeoutError` when no answer came in time (the message stays queued).
- `submit(msg)`: durable, non-blocking, returns a future of the hub seq (pipelined durability).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import zmq
from zmq.utils.monitor import recv_monitor_message

from bus import codec
from bus.codec import BusError
from bus.messages import Message
from bus.protocol import ErrorCode
from bus.replies import Ack, Duplicate, Nack, OutOfOrder, Reply
from bus.replies import decode as decode_replies
from bus.sockets import client_socket
from config.settings import Settings

log = logging.getLogger(__name__)

_ERROR_BACKOFF_S = 0.5
_NOBLOCK = int(zmq.NOBLOCK)  # a plain int: pyzmq's flag enums are slow on the hot path
_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_MONITOR_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED
_TRANSMIT_BATCH = 512  # frames built per lock hold; keeps callers from waiting on the I/O thread


class OutboxFull(Exception):
    """A durable message found no room within its timeout. Nothing was dropped; retry later."""


@dataclass(slots=True)
class _Pending:
    packed: bytes  # the message, msgpack-encoded once
    ts: float
    durable: bool
    future: Future[int] | None
    sent_at: float = 0.0  # monotonic time of the last transmission; 0 = never sent
    sends: int = 0


@dataclass(slots=True)
class SenderStats:
    sent: int = 0
    acked: int = 0
    duplicates: int = 0
    nacked: int = 0
    resent: int = 0
    out_of_order: int = 0
    rewinds: int = 0
    dropped_telemetry: int = 0
    io_errors: int = 0
    handshake_failures: int = 0
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
        if not 0 < len(source) <= codec.MAX_ID_LEN:
            raise ValueError(f"sender source must be 1..{codec.MAX_ID_LEN} characters")
        self.source = source
        self.incarnation = time.time_ns()
        self.endpoint = endpoint or settings.ingest_endpoint
        self._settings = settings
        self._ctx = context or zmq.Context.instance()
        self._outbox_max = outbox_max or settings.sender.outbox_max
        # Telemetry may take at most half the outbox: the rest is kept for durable messages,
        # which cannot evict telemetry that was never sent (see _evict_oldest_telemetry).
        self._telemetry_max = max(1, self._outbox_max // 2)
        self._resend_after = resend_after_s or settings.sender.resend_after_s
        # The largest message that fits in one frame with this sender's envelope around it.
        self._max_packed = settings.bus.max_frame_bytes - len(
            codec.build_envelope(source, self.incarnation, codec.U64_MAX, codec.U64_MAX, 0.0, b""))
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._outbox: OrderedDict[int, _Pending] = OrderedDict()  # ascending sseq
        self._queue: deque[int] = deque()  # to transmit on this connection, ascending
        self._probe: int | None = None  # during a rewind: the one sseq in flight
        self._queue_gen = 0  # bumped whenever the queue is rebuilt
        self._connected = False
        self._handshake_failing = False
        self._next_sseq = 1
        self._wake_armed = False
        self.stats = SenderStats()
        self.last_nack: BusError | None = None
        self._wake_addr = f"inproc://sender-wake-{id(self)}-{self.incarnation}"
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
        return self._connected

    def send(self, msg: Message, *, wait_room_s: float | None = None) -> int | None:
        """Queue `msg`; returns its sseq, or None if it was telemetry dropped for lack of room."""
        return self._enqueue(msg, None, wait_room_s, msg.DURABLE)

    def submit(self, msg: Message, *, wait_room_s: float | None = None) -> Future[int]:
        """Queue `msg` as durable and return a future: its hub seq once journaled, or `BusError` on NACK.

        For callers that keep many durable messages in flight (pipelined), then wait on them.
        """
        future: Future[int] = Future()
        self._enqueue(msg, future, wait_room_s, True)
        return future

    def send_and_wait(self, msg: Message, timeout: float | None = None) -> int:
        """Block until the hub has made `msg` durable; returns its hub seq (0: committed earlier, seq unknown)."""
        timeout = self._settings.sender.ack_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        future = self.submit(msg, wait_room_s=timeout)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            raise TimeoutError(f"no ACK for {msg.TYPE} within {timeout:.1f}s (still queued)") from None

    def flush(self, timeout: float) -> bool:
        """Wait until every queued message is answered; False if some remain."""
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
        if not self.flush(flush_timeout):
            log.warning("sender %s closing with %d unanswered messages", self.source, len(self._outbox))
        self._stop.set()
        self._wake()
        self._thread.join(timeout=5)
        with self._lock:
            self._wake_push.close(0)

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _enqueue(
        self, msg: Message, future: Future[int] | None, wait_room_s: float | None, durable: bool
    ) -> int | None:
        if self._stop.is_set():
            raise RuntimeError(f"sender {self.source} is closed")
        packed = codec.pack_message(msg)  # outside the lock: encoding is the expensive part
        if len(packed) > self._max_packed:
            # Refused here, not queued: the hub would NACK it, or, over its hard cap, drop the
            # connection without an answer; resent on every reconnect, it would then hold back
            # every later message of this sender for ever.
            raise BusError(ErrorCode.FRAME_TOO_LARGE,
                           f"{msg.TYPE} is {len(packed)} bytes packed; at most {self._max_packed} fit in a frame")
        ts = time.time()
        with self._room:
            if not durable and len(self._outbox) >= self._telemetry_max:
                self.stats.dropped_telemetry += 1
                return None
            deadline = None if wait_room_s is None else time.monotonic() + wait_room_s
            while len(self._outbox) >= self._outbox_max:
                if self._evict_oldest_telemetry():
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise OutboxFull(f"outbox full ({self._outbox_max}) and no answers within {wait_room_s}s")
                self._room.wait(0.1 if left is None else min(left, 0.1))
            # The sseq is taken only once there is room, so concurrent callers never share one.
            sseq = self._next_sseq
            self._next_sseq += 1
            self._outbox[sseq] = _Pending(packed, ts, durable, future)
            if self._probe is None:
                self._queue.append(sseq)
            self._wake_locked()
        return sseq

    def _evict_oldest_telemetry(self) -> bool:
        # Only telemetry already sent: the hub has it (or, after a reconnect, gets a hole it
        # resolves with one rewind). A never-sent one evicted would leave a gap in the sseqs
        # that every later frame runs into ("out of order": a rewind and a resend of the whole
        # outbox, again and again while the outbox stays full: a resend storm). Safe even if
        # the evicted message is in flight: `oldest` only ever claims "never resent".
        for sseq, pending in self._outbox.items():
            if not pending.durable and pending.sends:
                del self._outbox[sseq]
                self.stats.dropped_telemetry += 1
                if sseq == self._probe:
                    self._end_probe()
                return True
        return False

    def _wake_locked(self) -> None:
        if not self._wake_armed:
            self._wake_armed = True
            try:
                self._wake_push.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                self._wake_armed = False

    def _wake(self) -> None:
        with self._lock:
            self._wake_armed = False
            self._wake_locked()

    # --- ordering (caller holds the lock) ------------------------------------------------------

    def _rewind(self) -> None:
        """Send the oldest message alone, then everything else once it is answered."""
        self._queue.clear()
        self._queue_gen += 1
        self._probe = next(iter(self._outbox), None)
        if self._probe is not None:
            self.stats.rewinds += 1
            self._queue.append(self._probe)

    def _end_probe(self) -> None:
        self._probe = None
        self._queue_gen += 1
        self._queue = deque(self._outbox)

    # --- I/O thread ----------------------------------------------------------------------------

    def _open(self) -> tuple[zmq.Socket, zmq.Socket]:
        sock = client_socket(self._ctx, zmq.DEALER, self.endpoint, self._settings)
        # The monitor must exist before connect, or a fast handshake goes unseen and we never send.
        monitor = sock.get_monitor_socket(_MONITOR_EVENTS)
        sock.connect(self.endpoint)
        return sock, monitor

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._serve()
            except zmq.ContextTerminated:
                return
            except Exception:  # the I/O thread must outlive any one bad event; the outbox is intact
                self.stats.io_errors += 1
                log.exception("sender %s: I/O loop failed; reopening the connection", self.source)
                with self._lock:
                    self._connected = False
                self._stop.wait(_ERROR_BACKOFF_S)
        self._wake_pull.close(0)

    def _serve(self) -> None:
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
                    out = self._connected and bool(self._queue)
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
                    # Disarm only after draining: a caller that saw "armed" queued its message
                    # before this point, and `_transmit` below picks it up.
                    with self._lock:
                        self._wake_armed = False
                if events.get(sock, 0) & zmq.POLLIN:
                    self._on_replies(sock)
                self._resend_if_overdue()
                self._transmit(sock)
        finally:
            sock.disable_monitor()
            monitor.close(0)
            sock.close(0)

    def _on_monitor(self, monitor: zmq.Socket) -> None:
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            with self._lock:
                if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    # A new connection: whatever was in flight on the old one may be lost, and
                    # nothing stale can arrive on this one, so everything goes again, in order.
                    self._connected = True
                    self._handshake_failing = False
                    self._end_probe()
                elif event["event"] == zmq.EVENT_DISCONNECTED:
                    self._connected = False
                elif event["event"] & _HANDSHAKE_FAILED:
                    # E.g. CURVE keys the hub does not accept: retried by ZeroMQ, said once here.
                    self.stats.handshake_failures += 1
                    if not self._handshake_failing:
                        self._handshake_failing = True
                        log.error("sender %s: handshake with %s failed (%s); nothing can be delivered until "
                                  "it succeeds (check CURVE keys and the hub's allow-list)", self.source,
                                  self.endpoint, zmq.Event(event["event"]).name)

    def _resend_if_overdue(self) -> None:
        with self._lock:
            if not self._connected or not self._outbox:
                return
            oldest = next(iter(self._outbox.values()))
            if oldest.sent_at and time.monotonic() - oldest.sent_at >= self._resend_after:
                self._rewind()

    def _transmit(self, sock: zmq.Socket) -> None:
        """Send queued messages in sseq order until the pipe is full (HWM) or the queue is empty."""
        while True:
            with self._lock:
                if not self._connected or not self._queue:
                    return
                oldest = next(iter(self._outbox), 0)
                gen = self._queue_gen
                batch: list[tuple[int, _Pending]] = []
                while self._queue and len(batch) < _TRANSMIT_BATCH:
                    sseq = self._queue.popleft()
                    pending = self._outbox.get(sseq)
                    if pending is not None:
                        batch.append((sseq, pending))
            now = time.monotonic()
            for index, (sseq, pending) in enumerate(batch):
                frame = codec.build_envelope(self.source, self.incarnation, sseq, oldest, pending.ts, pending.packed)
                try:
                    sock.send(frame, _NOBLOCK)
                except zmq.Again:
                    # Pipe full or peer gone: keep the rest, in order, for the next POLLOUT/handshake.
                    with self._lock:
                        if gen == self._queue_gen:  # else a rewind already re-queued them
                            self._queue.extendleft(s for s, _p in reversed(batch[index:]))
                    return
                if pending.sends:
                    self.stats.resent += 1
                pending.sends += 1
                pending.sent_at = now
                self.stats.sent += 1

    def _on_replies(self, sock: zmq.Socket) -> None:
        while True:
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._settle(decode_replies(frame))

    def _settle(self, replies: list[Reply | ValueError]) -> None:
        done: list[tuple[Future[int], int | BusError]] = []
        with self._room:
            for item in replies:
                match item:
                    case ValueError():
                        log.error("sender %s: %s", self.source, item)
                        continue
                    case OutOfOrder(sseq=sseq):
                        self.stats.out_of_order += 1
                        if self._probe is None or sseq == self._probe:
                            self._rewind()
                        continue
                    case Nack(sseq=sseq):
                        pending = self._outbox.pop(sseq, None) if sseq is not None else None
                        self._on_nack(item, pending, done)
                    case Ack(sseq=sseq, seq=seq) | Duplicate(sseq=sseq, seq=seq):
                        pending = self._outbox.pop(sseq, None)
                        if pending is not None:
                            if isinstance(item, Ack):
                                self.stats.acked += 1
                            else:
                                self.stats.duplicates += 1
                            if pending.future is not None:
                                done.append((pending.future, seq))
                if self._probe is not None and self._probe not in self._outbox:
                    self._end_probe()
            self._room.notify_all()
        for future, result in done:
            if isinstance(result, BusError):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _on_nack(self, nack: Nack, pending: _Pending | None, done: list[tuple[Future[int], int | BusError]]) -> None:
        code = nack.code.value
        self.stats.nacked += 1
        self.stats.nack_codes[code] = self.stats.nack_codes.get(code, 0) + 1
        err = nack.error()
        self.last_nack = err
        log.warning("sender %s: NACK sseq=%s %s", self.source, nack.sseq, err)
        if pending is not None and pending.future is not None:
            done.append((pending.future, err))
