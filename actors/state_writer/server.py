"""The state writer's server loop: one handler per socket, a tick, a heartbeat.

ingest   ROUTER  decode -> validate -> de-duplicate -> seq -> journal (group commit, fsync)
                 -> apply (memory, hooks) -> ACK -> publish
updates  PUB     [topic, seq, envelope] for every committed message; "$hub" heartbeats
snapshot ROUTER  state documents (and hook views) at one seq

Start-up: lock the state directory, load the newest snapshot, replay the journal tail,
rewrite every state file, then bind and serve. SIGTERM: drain, fsync, write files,
snapshot, release the lock.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgpack
import zmq
from prometheus_client import CollectorRegistry, start_http_server

from actors.state_writer.files import StateFileWriter
from actors.state_writer.hooks import CommitHook, Committed
from actors.state_writer.journal import Journal
from actors.state_writer.lock import StateDirLock
from actors.state_writer.metrics import WriterMetrics
from actors.state_writer.snapshot import load_latest, write_snapshot
from actors.state_writer.state import WriterState
from bus import codec
from bus.codec import BusError
from bus.messages import REGISTRY, STATE_DOCUMENTS, Message
from bus.protocol import ACK, DUPLICATE, HUB_TOPIC, NACK, ErrorCode, pack_seq
from bus.sockets import bind
from config.settings import Settings

log = logging.getLogger(__name__)

# Types whose full dict the in-memory state needs (others only count).
_STATEFUL_TYPES = frozenset({"heartbeat", "order_intent", "exit_trigger", "order_event"})
_DEGRADED_BACKOFF_S = 0.5
_SHUTDOWN_DRAIN_S = 2.0


def _peek_type(frame: bytes) -> str:
    try:
        obj = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        kind = obj["msg"]["type"]
        return kind if isinstance(kind, str) and kind in REGISTRY else "unknown"
    except Exception:
        return "unknown"


class StateWriter:
    def __init__(
        self,
        settings: Settings,
        hooks: Sequence[CommitHook] = (),
        *,
        context: zmq.Context | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.hooks = list(hooks)
        self.ctx = context or zmq.Context.instance()
        self.registry = registry or CollectorRegistry()
        self.metrics = WriterMetrics(self.registry)
        self.lock = StateDirLock(settings.state_path)
        self.journal = Journal(settings.journal_path, settings.writer.journal_segment_bytes)
        self.files = StateFileWriter(
            settings.state_path,
            on_write=lambda key, s: self.metrics.file_write.labels(key).observe(s),
            on_error=lambda key, _e: self.metrics.file_errors.labels(key).inc(),
        )
        self.state = WriterState(settings.writer.dedup_streams_max)
        self.epoch = time.time_ns()
        self.degraded_reason: str | None = None
        self._dirty: set[str] = set()
        self._snapshot_seq = 0
        self._snapshot_at = time.monotonic()
        self._resume_at = 0.0
        self._sockets: list[zmq.Socket] = []
        self._metrics_server: Any = None
        self.started = False

    # --- start-up ------------------------------------------------------------------------------

    def start(self, *, serve_metrics: bool = True) -> None:
        self.lock.acquire()  # raises StateDirLocked naming the holder
        try:
            started = time.monotonic()
            replayed = self._recover()
            self.metrics.recovery_seconds.set(time.monotonic() - started)
            self.metrics.replayed.set(replayed)
            self.files.write_now(self.state.documents)
            self.files.start()
            self._bind()
            if serve_metrics:
                self._metrics_server = start_http_server(
                    self.settings.metrics_port("state_writer"), addr=self.settings.metrics_host,
                    registry=self.registry)
        except BaseException:
            self.lock.release()
            raise
        self.metrics.seq.set(self.state.seq)
        self.metrics.journal_bytes.set(self.journal.size_bytes())
        self.started = True
        log.info("state writer serving at seq %d (replayed %d) ingest=%s", self.state.seq, replayed,
                 self.settings.ingest_endpoint)

    def _recover(self) -> int:
        snap = load_latest(self.settings.journal_path)
        if snap is not None:
            self.state = WriterState.load(snap, self.settings.writer.dedup_streams_max)
        self._snapshot_seq = self.state.seq
        hook_from = min((h.applied_seq() for h in self.hooks), default=self.state.seq)
        start_after = min(self.state.seq, hook_from)
        replayed = 0
        hook_batch: list[Committed] = []
        for record in self.journal.replay(after_seq=start_after):
            env = msgpack.unpackb(record.payload, raw=False, strict_map_key=False)
            msg = env["msg"]
            if record.seq > self.state.seq:
                cls = REGISTRY[msg["type"]][msg["v"]]
                self.state.apply(record.seq, env["src"], env["inc"], env["sseq"], msg, cls.STATE_KEY)
                replayed += 1
            if self.hooks and record.seq > hook_from:
                full = codec.decode_envelope(record.payload, max_bytes=1 << 30)
                hook_batch.append(Committed(record.seq, full.src, full.inc, full.sseq, full.msg))
                if len(hook_batch) >= 1000:
                    self._apply_hooks(hook_batch, replay=True)
                    hook_batch = []
        if hook_batch:
            self._apply_hooks(hook_batch, replay=True)
        self.state.seq = max(self.state.seq, self.journal.last_seq)
        self.journal.last_seq = self.state.seq
        # Replayed documents are raw wire dicts; normalise them (defaults, formats) once.
        for key, doc in list(self.state.documents.items()):
            try:
                self.state.documents[key] = STATE_DOCUMENTS[key].model_validate(doc).to_document()
            except Exception as exc:  # a document from an older schema must not stop recovery
                log.error("recovered %s does not validate (%s); keeping it as journaled", key, exc)
        self.journal.open_for_append()
        return replayed

    def _apply_hooks(self, batch: list[Committed], *, replay: bool = False) -> None:
        for hook in self.hooks:
            todo = [c for c in batch if c.seq > hook.applied_seq()] if replay else batch
            if todo:
                hook.apply(todo)

    def _bind(self) -> None:
        s = self.settings
        self.ingest = bind(self.ctx, zmq.ROUTER, s.ingest_endpoint, s)
        self.updates = bind(self.ctx, zmq.PUB, s.updates_endpoint, s)
        self.snapshots = bind(self.ctx, zmq.ROUTER, s.snapshot_endpoint, s)
        self._sockets = [self.ingest, self.updates, self.snapshots]

    # --- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        tick_s = self.settings.writer.tick_ms / 1000.0
        hb_s = self.settings.bus.heartbeat_s
        poller = zmq.Poller()
        poller.register(self.snapshots, zmq.POLLIN)
        ingest_registered = False
        next_tick = time.monotonic() + tick_s
        next_hb = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            want_ingest = now >= self._resume_at
            if want_ingest != ingest_registered:
                if want_ingest:
                    poller.register(self.ingest, zmq.POLLIN)
                else:
                    poller.unregister(self.ingest)
                ingest_registered = want_ingest
            wake = min(next_tick, next_hb, self._resume_at if not want_ingest else next_tick)
            events = dict(poller.poll(max(0, int((wake - now) * 1000)) + 1))
            if self.ingest in events:
                self._ingest()
            if self.snapshots in events:
                self._serve_snapshots()
            now = time.monotonic()
            if now >= next_tick:
                self._tick()
                next_tick = now + tick_s
            if now >= next_hb:
                self._heartbeat()
                next_hb = now + hb_s

    def _ingest(self) -> int:
        frames_in: list[list[bytes]] = []
        for _ in range(self.settings.writer.batch_max):
            try:
                frames_in.append(self.ingest.recv_multipart(zmq.NOBLOCK, copy=True))
            except zmq.Again:
                break
        self.metrics.ingest_depth.set(len(frames_in))
        if not frames_in:
            return 0
        replies: dict[bytes, list[list[Any]]] = defaultdict(list)
        accepted: list[tuple[bytes, bytes, Committed]] = []
        in_batch: dict[tuple[str, int], int] = {}
        batch_dups: list[tuple[bytes, int]] = []  # answered only if their original commits
        next_seq = self.state.seq + 1
        max_bytes = self.settings.bus.max_frame_bytes
        for frames in frames_in:
            identity = frames[0]
            if len(frames) != 2:
                replies[identity].append([NACK, None, ErrorCode.BAD_FRAMES.value, None,
                                          f"expected 1 frame after identity, got {len(frames) - 1}"])
                self.metrics.nacks.labels("unknown", ErrorCode.BAD_FRAMES.value).inc()
                continue
            frame = frames[1]
            try:
                env = codec.decode_envelope(frame, max_bytes=max_bytes)
            except BusError as err:
                sseq = codec.peek_sseq(frame, max_bytes) if len(frame) <= max_bytes else None
                replies[identity].append([NACK, sseq, err.code.value, err.field, err.detail[:512]])
                kind = _peek_type(frame) if len(frame) <= max_bytes else "unknown"
                self.metrics.nacks.labels(kind, err.code.value).inc()
                continue
            stream = (env.src, env.inc)
            dup = self.state.duplicate_of(env.src, env.inc, env.sseq)
            if dup is None and env.sseq <= in_batch.get(stream, 0):
                batch_dups.append((identity, env.sseq))
                continue
            if dup is not None:
                replies[identity].append([DUPLICATE, env.sseq, dup])
                self.metrics.duplicates.inc()
                continue
            in_batch[stream] = env.sseq
            accepted.append((identity, frame, Committed(next_seq, env.src, env.inc, env.sseq, env.msg)))
            next_seq += 1
        if accepted and not self._commit(accepted, replies):
            accepted = []
            batch_dups = []
        for identity, sseq in batch_dups:
            replies[identity].append([DUPLICATE, sseq, 0])
            self.metrics.duplicates.inc()
        self._reply(replies)
        for _identity, frame, c in accepted:
            self.updates.send_multipart([c.msg.TYPE.encode(), pack_seq(c.seq), frame])
        self.metrics.published.inc(len(accepted))
        return len(accepted)

    def _commit(self, accepted: list[tuple[bytes, bytes, Committed]], replies: dict[bytes, list[list[Any]]]) -> bool:
        started = time.perf_counter()
        try:
            self.journal.append([(c.seq, frame) for _i, frame, c in accepted])
        except OSError as exc:
            reason = errno.errorcode.get(exc.errno or 0, "EIO")
            self.metrics.journal_errors.labels(reason).inc()
            if self.degraded_reason != reason:
                log.error("journal append failed (%s: %s); not ACKing until it succeeds", reason, exc)
            self.degraded_reason = reason
            self.metrics.degraded.set(1)
            self._resume_at = time.monotonic() + _DEGRADED_BACKOFF_S
            return False
        self.metrics.journal_fsync.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(accepted))
        if self.degraded_reason is not None:
            log.warning("journal writable again after %s; resuming ACKs", self.degraded_reason)
            self.degraded_reason = None
            self.metrics.degraded.set(0)
        batch = [c for _i, _f, c in accepted]
        for c in batch:
            msg: Message = c.msg
            key = msg.STATE_KEY
            wire = msg.to_wire() if key is not None or msg.TYPE in _STATEFUL_TYPES else {"type": msg.TYPE}
            self.state.apply(c.seq, c.src, c.inc, c.sseq, wire, key)
            if key is not None:
                self._dirty.add(key)
            self.metrics.messages.labels(msg.TYPE).inc()
        # Hooks (the positions store) commit before anything is ACKed. If one raises, the
        # process stops un-ACKed and replays the journal into the hook on restart.
        self._apply_hooks(batch)
        for identity, _frame, c in accepted:
            replies[identity].append([ACK, c.sseq, c.seq])
        self.metrics.seq.set(self.state.seq)
        return True

    def _reply(self, replies: dict[bytes, list[list[Any]]]) -> None:
        for identity, items in replies.items():
            try:
                self.ingest.send_multipart([identity, codec.pack(items)], zmq.NOBLOCK)
            except zmq.ZMQError:
                # The sender went away; it will resend and get a duplicate ACK.
                self.metrics.unroutable.inc()

    # --- snapshot service ----------------------------------------------------------------------

    def _all_keys(self) -> list[str]:
        return [*self.state.keys(), *(k for h in self.hooks for k in h.keys)]

    def _view(self, key: str) -> Any:
        for hook in self.hooks:
            if key in hook.keys:
                return hook.view(key)
        return self.state.view(key)

    def _serve_snapshots(self) -> None:
        for _ in range(256):
            try:
                frames = self.snapshots.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity = frames[0]
            reply = self._snapshot_reply(frames)
            try:
                self.snapshots.send_multipart([identity, codec.pack(reply)], zmq.NOBLOCK)
            except zmq.ZMQError:
                self.metrics.unroutable.inc()

    def _snapshot_reply(self, frames: list[bytes]) -> dict[str, Any]:
        if len(frames) != 2:
            return {"req": None, "error": ErrorCode.BAD_FRAMES.value}
        try:
            req = codec.unpack(frames[1], max_bytes=64 << 10)
        except BusError as err:
            return {"req": None, "error": err.code.value, "detail": err.detail}
        if not isinstance(req, dict):
            return {"req": None, "error": ErrorCode.BAD_REQUEST.value, "detail": "request must be a map"}
        req_id = req.get("req")
        if not isinstance(req_id, int | str | None):
            req_id = None
        op = req.get("op")
        if op == "status":
            return {"req": req_id, **self.status()}
        if op != "snapshot":
            return {"req": req_id, "error": ErrorCode.BAD_REQUEST.value, "detail": f"unknown op {str(op)[:32]!r}"}
        keys = req.get("keys")
        known = self._all_keys()
        if keys is None:
            keys = known
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            return {"req": req_id, "error": ErrorCode.BAD_REQUEST.value, "detail": "keys must be a list of strings"}
        unknown = [k for k in keys if k not in known]
        if unknown:
            return {"req": req_id, "error": ErrorCode.BAD_REQUEST.value, "detail": f"unknown keys {unknown[:8]}"}
        self.metrics.snapshot_requests.inc()
        return {"req": req_id, "seq": self.state.seq, "epoch": self.epoch, "state": {k: self._view(k) for k in keys}}

    def status(self) -> dict[str, Any]:
        return {
            "seq": self.state.seq,
            "epoch": self.epoch,
            "pid": os.getpid(),
            "degraded": self.degraded_reason,
            "keys": self._all_keys(),
            "journal_bytes": self.journal.size_bytes(),
            "streams": len(self.state.streams),
        }

    # --- periodic work -------------------------------------------------------------------------

    def _tick(self) -> None:
        if self._dirty:
            self.files.submit({k: self.state.documents[k] for k in self._dirty})
            self._dirty.clear()
        w = self.settings.writer
        pending = self.state.seq - self._snapshot_seq
        if pending >= w.snapshot_every_messages or (
            pending > 0 and time.monotonic() - self._snapshot_at >= w.snapshot_every_s
        ):
            self.snapshot()

    def snapshot(self) -> None:
        try:
            write_snapshot(self.settings.journal_path, self.state.seq, self.state.dump())
            self.journal.rotate()
            self.journal.compact(self.state.seq)
        except OSError as exc:
            log.error("snapshot at seq %d failed: %s (journal kept)", self.state.seq, exc)
            self._snapshot_at = time.monotonic()
            return
        self._snapshot_seq = self.state.seq
        self._snapshot_at = time.monotonic()
        self.metrics.snapshots.inc()
        self.metrics.journal_bytes.set(self.journal.size_bytes())

    def _heartbeat(self) -> None:
        body = codec.pack({
            "ts": time.time(), "seq": self.state.seq, "pid": os.getpid(), "epoch": self.epoch,
            "degraded": self.degraded_reason,
        })
        self.updates.send_multipart([HUB_TOPIC, pack_seq(self.state.seq), body])

    # --- shutdown ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Drain what is queued, make it durable, write the files, snapshot, release the lock."""
        if not self.started:
            return
        deadline = time.monotonic() + _SHUTDOWN_DRAIN_S
        while time.monotonic() < deadline and self.degraded_reason is None:
            if not self.ingest.poll(50, zmq.POLLIN):
                break
            self._ingest()
        self._tick()
        self.files.drain(timeout=10)
        self.files.stop()
        if self.state.seq > self._snapshot_seq:
            self.snapshot()
        self.journal.close()
        for hook in self.hooks:
            hook.close()
        for sock in self._sockets:
            sock.close(linger=self.settings.bus.linger_ms)
        if self._metrics_server is not None:
            server = self._metrics_server[0] if isinstance(self._metrics_server, tuple) else None
            if server is not None:
                server.shutdown()
        self.lock.release()
        self.started = False
        log.info("state writer stopped at seq %d", self.state.seq)
