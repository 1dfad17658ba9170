"""The state writer's server loop: one handler per socket, a tick, a heartbeat.

ingest   ROUTER  decode -> validate -> de-duplicate/order -> seq -> journal (group commit,
                 fsync) -> apply (memory, hooks) -> ACK -> publish
updates  XPUB    [topic, seq, envelope] for every committed message; "$hub" heartbeats, also
                 sent at once when a subscriber joins so it can tell its subscription is live;
                 ["$view:<key>", seq, {key, value}] for every hook view a batch (or a tick) changed
snapshot ROUTER  state documents (and hook views) at one seq; `status`

Start-up: lock the state directory, load the newest snapshot, replay the journal tail,
rewrite every state file, then bind and serve. SIGTERM: drain, fsync, write files,
snapshot, release the lock.

Storage that refuses writes (disk full, read-only, database gone) never stops the process:
the writer stops ACKing ("degraded", with the reason in status, heartbeats, logs and
metrics), keeps serving snapshots and heartbeats, and retries until the condition clears.
A failed journal write discards its batch (senders resend it). A journaled batch is published
at once; a commit hook that then fails holds the batch's ACKs: the hook is reopened and caught
up from the journal, then the held batch is ACKed, so nothing is answered twice and the
update stream has no gap. A process restart would do the same catch-up, but supervisord
gives up on a program that keeps failing to start, and the condition may last minutes.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import zmq
from prometheus_client import CollectorRegistry, start_http_server
from zmq.utils.monitor import recv_monitor_message

from actors.state_writer.authority import Authority
from actors.state_writer.files import StateFileWriter
from actors.state_writer.hooks import CommitHook
from actors.state_writer.ingest import DETAIL_MAX, Inbound, Judged, judge
from actors.state_writer.journal import Journal
from actors.state_writer.lock import StateDirLock
from actors.state_writer.metrics import WriterMetrics
from actors.state_writer.recovery import apply_hooks, catch_up_hooks, recover
from actors.state_writer.snapshot import retained_from, write_snapshot
from actors.state_writer.state import WriterState
from bus import codec
from bus.codec import BusError
from bus.messages import Message
from bus.protocol import HUB_TOPIC, VIEW_TOPIC_PREFIX, ErrorCode, pack_seq
from bus.replies import Ack, Reply
from bus.replies import encode as encode_replies
from bus.security import curve_key_producers, is_curve_server
from bus.sockets import bind
from config.settings import Settings

log = logging.getLogger(__name__)

_DEGRADED_BACKOFF_S = 0.5
_STORE_RETRY_MAX_S = 2.0  # a failing commit hook is retried at 0.5, 1, 2, 2, ... s
_SNAPSHOT_RETRY_S = 5.0  # after a failed snapshot write
_SHUTDOWN_DRAIN_S = 2.0
_SNAPSHOT_REQUESTS_PER_WAKE = 256


# Plain ints: pyzmq's flag enums cost microseconds per operation on the hot path.
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)
_RCVMORE = int(zmq.RCVMORE)


@functools.cache
def _topic(cls: type[Message]) -> bytes:
    return cls.TYPE.encode()


def failure_reason(exc: BaseException) -> str:
    """A short, stable name for why storage refused: SQLite's error name, an errno name, or the
    type of the innermost error (wrappers such as SQLAlchemy's keep the driver's error in `orig`)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 8:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        name = getattr(e, "sqlite_errorname", None)
        if isinstance(name, str):
            return name
        if isinstance(e, OSError) and e.errno:
            return errno.errorcode.get(e.errno, "EIO")
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return type(seen[-1]).__name__


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
        # Over CURVE each client key may speak only as the producers its key file names.
        self._keyed = is_curve_server(settings.ingest_endpoint, settings)
        self.authority = Authority(curve_key_producers(settings) if self._keyed else None)
        self.epoch = time.time_ns()
        self.journal_error: str | None = None  # errno name while journal appends fail
        self.store_error: str | None = None  # why the commit hooks are behind the journal
        self._held: Judged | None = None  # journaled, applied in memory, hooks failed: not yet ACKed
        self._store_retry_at = 0.0
        self._store_backoff_s = _DEGRADED_BACKOFF_S
        self._snapshot_retry_at = 0.0
        self._dirty: set[str] = set()
        self._snapshot_seq = 0
        self._snapshot_at = time.monotonic()
        self._view_seqs: dict[str, int] = {}  # view key -> seq of its last $view frame (in heartbeats)
        self._resume_at = 0.0
        self._sockets: list[zmq.Socket] = []
        self._metrics_server: Any = None
        self.started = False

    # --- start-up ------------------------------------------------------------------------------

    def start(self, *, serve_metrics: bool = True) -> None:
        self.lock.acquire()  # raises StateDirLocked naming the holder
        opened: list[CommitHook] = []
        try:
            for hook in self.hooks:  # under the lock: a refused second writer never touches a hook's storage
                hook.open()
                opened.append(hook)
            started = time.monotonic()
            self.files.remove_stale_temps()
            recovered = recover(self.journal, self.hooks, self.settings.writer.dedup_streams_max,
                                (self.settings.mode, self.settings.account, self.settings.exchange.network))
            self.state = recovered.state
            self._snapshot_seq = recovered.snapshot_seq
            self._resume_hooks()
            self._baseline_views()
            self.journal.open_for_append()
            self.files.write_now(self.state.documents())  # a refused write stays pending (files thread)
            self.metrics.recovery_seconds.set(time.monotonic() - started)
            self.metrics.replayed.set(recovered.replayed)
            self.metrics.journal_truncated.set(self.journal.truncated_bytes)
            self.files.start()
            self._bind()
            if serve_metrics:
                self._metrics_server = start_http_server(
                    self.settings.metrics_port("state_writer"), addr=self.settings.metrics_host,
                    registry=self.registry)
        except BaseException:
            self._close_sockets()
            for hook in opened:
                hook.close()
            self.lock.release()
            raise
        self.metrics.seq.set(self.state.seq)
        self.metrics.journal_bytes.set(self.journal.size_bytes())
        self.metrics.streams.set(len(self.state.streams))
        self.metrics.files_failing.set(1 if self.files.failing else 0)
        if recovered.hook_error is not None:
            self._store_failed(recovered.hook_error, "start-up replay")
        self.started = True
        log.info("state writer pid %d serving at seq %d (replayed %d in %.2fs) ingest=%s",
                 os.getpid(), self.state.seq, recovered.replayed, time.monotonic() - started,
                 self.settings.ingest_endpoint)

    def _bind(self) -> None:
        s = self.settings
        self.ingest = bind(self.ctx, zmq.ROUTER, s.ingest_endpoint, s)
        self._sockets.append(self.ingest)
        # libzmq closes a connection that sends a frame over ZMQ_MAXMSGSIZE (or no ZMTP at all)
        # without telling the application; its monitor events are the only trace, so count them.
        self.ingest_monitor = self.ingest.get_monitor_socket(
            zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        self._sockets.append(self.ingest_monitor)
        self.updates = bind(self.ctx, zmq.XPUB, s.updates_endpoint, s)
        self._sockets.append(self.updates)
        self.snapshots = bind(self.ctx, zmq.ROUTER, s.snapshot_endpoint, s)
        self._sockets.append(self.snapshots)

    # --- the loop ------------------------------------------------------------------------------

    @property
    def degraded_reason(self) -> str | None:
        """Why nothing is being ACKed right now (None: healthy)."""
        return self.journal_error or self.store_error

    def run(self, stop: threading.Event) -> None:
        tick_s = self.settings.writer.tick_ms / 1000.0
        hb_s = self.settings.bus.heartbeat_s
        poller = zmq.Poller()
        poller.register(self.snapshots, zmq.POLLIN)
        poller.register(self.updates, zmq.POLLIN)
        poller.register(self.ingest_monitor, zmq.POLLIN)
        ingest_registered = False
        next_tick = time.monotonic() + tick_s
        next_hb = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if self.store_error is not None and now >= self._store_retry_at:
                self._retry_store()
                now = time.monotonic()
            want_ingest = now >= self._resume_at and self.store_error is None
            if want_ingest != ingest_registered:
                if want_ingest:
                    poller.register(self.ingest, zmq.POLLIN)
                else:
                    poller.unregister(self.ingest)
                ingest_registered = want_ingest
            wake = min(next_tick, next_hb)
            if not want_ingest:
                wake = min(wake, self._store_retry_at if self.store_error is not None else self._resume_at)
            events = dict(poller.poll(max(0, int((wake - now) * 1000)) + 1))
            if self.ingest in events:
                self._ingest()
            if self.snapshots in events:
                self._serve_snapshots()
            if self.ingest_monitor in events:
                self._on_ingest_events()
            if self.updates in events and self._on_subscriptions():
                self._heartbeat()
            now = time.monotonic()
            if now >= next_tick:
                self._tick()
                next_tick = now + tick_s
            if now >= next_hb:
                self._heartbeat()
                next_hb = now + hb_s

    def _on_ingest_events(self) -> None:
        while self.ingest_monitor.poll(0):
            event = recv_monitor_message(self.ingest_monitor)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self.metrics.ingest_disconnects.inc()
            else:
                self.metrics.ingest_handshake_failures.inc()

    def _on_subscriptions(self) -> bool:
        """Read XPUB subscription frames; True if someone subscribed (send a heartbeat now)."""
        joined = False
        while True:
            try:
                frame = self.updates.recv(zmq.NOBLOCK)
            except zmq.Again:
                return joined
            if frame[:1] == b"\x01":
                joined = True
                self.metrics.subscriptions.inc()

    def _ingest(self) -> int:
        inbound: list[Inbound] = []
        sock = self.ingest
        recv, more = sock.recv, sock.getsockopt
        for _ in range(self.settings.writer.batch_max):
            try:
                if self._keyed:
                    item = self._recv_keyed(sock)
                else:
                    item = Inbound([recv(_NOBLOCK)])
                    while more(_RCVMORE):
                        item.frames.append(recv(_NOBLOCK))
            except zmq.Again:
                break
            inbound.append(item)
        self.metrics.ingest_depth.set(len(inbound))
        if not inbound:
            return 0
        admissions = [a for h in self.hooks if (a := h.admission()) is not None]
        batch = judge(inbound, self.state, self.settings.bus.max_frame_bytes, admissions, self.authority)
        return len(batch.accepted) if self.commit(batch) else 0

    @staticmethod
    def _recv_keyed(sock: zmq.Socket) -> Inbound:
        """A frame set with its CURVE client's name (ZAP User-Id): who may speak as which `src`."""
        frame = sock.recv(_NOBLOCK, copy=False)
        frames, key = [frame.bytes], None
        while frame.more:
            frame = sock.recv(_NOBLOCK, copy=False)
            frames.append(frame.bytes)
            key = frame.get("User-Id")  # message frames carry it; ROUTER's identity frame does not
        return Inbound(frames, key)

    def commit(self, batch: Judged) -> bool:
        """The one commit path: journal (fsync), apply, publish, store hooks, then answer.

        A message is published as soon as it is durable in the journal: an actor may act on a
        journaled intent or fill at once (that is what commit-before-act needs), while the
        positions store catches up. The ACK still waits for the store, so an ACKed fill is in
        the store too; a store that refuses holds the ACKs, never the stream.

        False when nothing was committed (all refused, or the journal or store refused: the
        refusals are answered, the rest is held or resent). bench/scale drives this directly.
        """
        if not batch.accepted:
            self._answer(batch, committed=False)
            return False
        if not self._journal_batch(batch):
            self._answer(batch, committed=False)  # refusals still answered; the rest is resent
            return False
        self._apply(batch)
        self._publish(batch)
        try:
            # Hooks (the positions store) commit before anything is ACKed.
            apply_hooks(self.hooks, [c for _i, _f, c in batch.accepted])
        except Exception as exc:  # any hook failure: durable in the journal, held unanswered
            self._held = batch
            self._store_failed(exc, f"seq {batch.accepted[0][2].seq}..{batch.accepted[-1][2].seq}")
            return False
        self._answer(batch, committed=True)
        return True

    def _journal_batch(self, batch: Judged) -> bool:
        started = time.perf_counter()
        try:
            self.journal.append([(c.seq, frame) for _i, frame, c in batch.accepted])
        except OSError as exc:
            self._enter_degraded(exc)
            return False
        self.metrics.journal_fsync.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(batch.accepted))
        if self.journal_error is not None:
            log.warning("journal writable again after %s; resuming ACKs", self.journal_error)
            self.journal_error = None
            self.metrics.degraded.set(1 if self.degraded_reason else 0)
        return True

    def _apply(self, batch: Judged) -> None:
        apply, dirty = self.state.apply_message, self._dirty
        for _i, _f, c in batch.accepted:
            apply(c.seq, c.src, c.inc, c.sseq, c.msg)
            if c.msg.STATE_KEY is not None:
                dirty.add(c.msg.STATE_KEY)
        self.metrics.seq.set(self.state.seq)
        self.metrics.streams.set(len(self.state.streams))

    def _answer(self, batch: Judged, *, committed: bool) -> None:
        """Send every answer of a judged batch; if `committed`, ACK its messages (published already)."""
        accepted, replies = batch.accepted, batch.replies
        if committed:
            for identity, _frame, c in accepted:
                replies[identity].append(Ack(c.sseq, c.seq))
            for cls, count in Counter(type(c.msg) for _i, _f, c in accepted).items():
                self.metrics.messages.labels(cls.TYPE).inc(count)
        if committed or not accepted:  # a failed journal write discards the whole batch's view
            batch.view.commit()
            for identity, reply in batch.deferred:
                replies[identity].append(reply)
        # Counted before anyone hears the answer, so a scrape after a reply always includes it.
        for (kind, code), count in batch.nacks.items():
            self.metrics.nacks.labels(kind, code).inc(count)
        if batch.duplicates:
            self.metrics.duplicates.inc(batch.duplicates)
        if batch.out_of_order:
            self.metrics.out_of_order.inc(batch.out_of_order)
        self._reply(replies)
        if committed:
            # The batch's messages went out when it was journaled; its views only now, once the
            # store (the hooks) has applied it.
            self._publish_views(accepted[-1][2].seq)

    def _publish(self, batch: Judged) -> None:
        """Every message of a journaled batch on the updates stream, in seq order."""
        send = self.updates.send
        for _identity, frame, c in batch.accepted:
            send(_topic(type(c.msg)), _SNDMORE)
            send(pack_seq(c.seq), _SNDMORE)
            send(frame)
        self.metrics.published.inc(len(batch.accepted))

    def _baseline_views(self) -> None:
        """Views as recovered are what a snapshot serves; only later changes are published."""
        for hook in self.hooks:
            try:
                hook.changed_views()
            except Exception:  # published once they can be built; snapshots say `internal` meanwhile
                self.metrics.view_errors.inc()
                log.exception("building the recovered views failed")

    def _publish_views(self, seq: int) -> None:
        """After the messages of a batch (or on a tick): each hook view that changed, once, at `seq`.

        No seq is consumed (like `$hub`): the frame says "as of the committed message `seq`", so a
        subscriber at `seq` applies it, one behind has missed updates, one ahead has it already.
        """
        for hook in self.hooks:
            try:
                changed = hook.changed_views()
            except Exception:  # a view that cannot be built must not stop the hub (snapshots say `internal`)
                self.metrics.view_errors.inc()
                log.exception("building the changed views failed")
                continue
            for key, value in changed.items():
                self.updates.send_multipart([VIEW_TOPIC_PREFIX + key.encode(), pack_seq(seq),
                                             codec.pack({"key": key, "value": value})])
                self._view_seqs[key] = seq
                self.metrics.views_published.labels(key).inc()

    def _enter_degraded(self, exc: OSError) -> None:
        reason = errno.errorcode.get(exc.errno or 0, "EIO")
        self.metrics.journal_errors.labels(reason).inc()
        if self.journal_error != reason:
            log.error("journal append failed (%s: %s); not ACKing until it succeeds, retrying every %.1fs",
                      reason, exc, _DEGRADED_BACKOFF_S)
        self.journal_error = reason
        self.metrics.degraded.set(1)
        # Stop reading ingest for a moment; unanswered senders resend, and the next batch retries.
        self._resume_at = time.monotonic() + _DEGRADED_BACKOFF_S

    def _store_failed(self, exc: BaseException, where: str) -> None:
        reason = f"store:{failure_reason(exc)}"
        self.metrics.hook_errors.labels(failure_reason(exc)).inc()
        if self.store_error is None:
            log.error("commit hook failed at %s (%r); not ACKing; reopening it and replaying the journal "
                      "until it commits", where, exc)
            self._store_backoff_s = _DEGRADED_BACKOFF_S
        elif self.store_error != reason:
            log.error("commit hook still failing, now %s (%r)", reason, exc)
        else:
            log.debug("commit hook still failing: %r", exc)
        self.store_error = reason
        self.metrics.degraded.set(1)
        self._store_retry_at = time.monotonic() + self._store_backoff_s
        self._store_backoff_s = min(self._store_backoff_s * 2, _STORE_RETRY_MAX_S)

    def _resume_hooks(self) -> None:
        for hook in self.hooks:
            hook.resume(self.state.pending_intents.values())

    def _retry_store(self) -> None:
        """Reopen the hooks and replay the journal into them; on success answer the held batch."""
        started = time.monotonic()
        try:
            for hook in self.hooks:
                hook.reopen()
            replayed = catch_up_hooks(self.journal, self.hooks, self.state.seq,
                                      (self.settings.mode, self.settings.account, self.settings.exchange.network))
        except Exception as exc:  # still refused: stay degraded, try again later
            self._store_failed(exc, "catch-up")
            return
        self._resume_hooks()
        log.warning("commit hooks caught up to seq %d (%d records in %.2fs) after %s; resuming ACKs",
                    self.state.seq, replayed, time.monotonic() - started, self.store_error)
        self.store_error = None
        self.metrics.degraded.set(1 if self.degraded_reason else 0)
        held, self._held = self._held, None
        if held is not None:
            self._answer(held, committed=True)

    def _reply(self, replies: dict[bytes, list[Reply]]) -> None:
        for identity, items in replies.items():
            try:
                self.ingest.send_multipart([identity, encode_replies(items)], zmq.NOBLOCK)
            except zmq.ZMQError:
                # The sender went away or stopped reading; it resends and gets a duplicate answer.
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
        for _ in range(_SNAPSHOT_REQUESTS_PER_WAKE):
            try:
                frames = self.snapshots.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity = frames[0]
            try:
                reply = self._snapshot_reply(frames)
            except Exception as exc:  # one bad request must not stop the loop (views are caught inside)
                log.exception("snapshot request failed")
                reply = {"req": None, "error": ErrorCode.INTERNAL.value, "detail": repr(exc)[:DETAIL_MAX]}
            if "error" in reply:
                self.metrics.snapshot_errors.labels(reply["error"]).inc()
            try:
                self.snapshots.send_multipart([identity, codec.pack(reply)], zmq.NOBLOCK)
            except zmq.ZMQError:
                self.metrics.unroutable.inc()

    def _snapshot_reply(self, frames: list[bytes]) -> dict[str, Any]:
        if len(frames) != 2:
            return {"req": None, "error": ErrorCode.BAD_FRAMES.value,
                    "detail": f"expected 1 frame after the identity, got {len(frames) - 1}"}
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
        unknown = [k[:64] for k in keys if k not in known]
        if unknown:
            return {"req": req_id, "error": ErrorCode.BAD_REQUEST.value, "detail": f"unknown keys {unknown[:8]}"}
        try:
            views = {k: self._view(k) for k in keys}
        except Exception as exc:  # a hook view that fails must not take the hub down
            log.exception("snapshot request for %s failed", keys[:8])
            # The req id is echoed: without it the client cannot match the answer and waits it out.
            return {"req": req_id, "error": ErrorCode.INTERNAL.value, "detail": repr(exc)[:DETAIL_MAX]}
        self.metrics.snapshot_requests.inc()
        return {"req": req_id, "seq": self.state.seq, "epoch": self.epoch, "state": views}

    def status(self) -> dict[str, Any]:
        return {
            "seq": self.state.seq,
            "epoch": self.epoch,
            "pid": os.getpid(),
            "degraded": self.degraded_reason,
            "files_failing": self.files.failing,
            "keys": self._all_keys(),
            "journal_bytes": self.journal.size_bytes(),
            "streams": len(self.state.streams),
        }

    # --- periodic work -------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.store_error is None and self._held is None:
            for hook in self.hooks:
                try:
                    hook.tick()
                except Exception:  # the contract says never raise; the hub keeps serving if one does
                    self.metrics.view_errors.inc()
                    log.exception("commit hook tick failed")
            self._publish_views(self.state.seq)
        if self._dirty:
            docs = {k: doc for k in self._dirty if (doc := self.state.document(k)) is not None}
            self.files.submit(docs)
            self._dirty.clear()
        self.metrics.files_failing.set(1 if self.files.failing else 0)
        w = self.settings.writer
        pending = self.state.seq - self._snapshot_seq
        if time.monotonic() >= self._snapshot_retry_at and (pending >= w.snapshot_every_messages or (
            pending > 0 and time.monotonic() - self._snapshot_at >= w.snapshot_every_s
        )):
            self.snapshot()

    def snapshot(self) -> None:
        """Write a snapshot, start a new journal segment, drop segments no longer needed."""
        directory = self.settings.journal_path
        try:
            write_snapshot(directory, self.state.seq, self.state.dump())
            self.journal.rotate()
            # Keep the journal back to the oldest retained snapshot (the fallback if the newest is
            # unreadable) and to every hook's own progress (it replays from there).
            keep_after = min([retained_from(directory), *(h.applied_seq() for h in self.hooks)])
            self.journal.compact(keep_after)
        except OSError as exc:
            log.error("snapshot at seq %d failed: %s (journal kept; retried in %.0fs)",
                      self.state.seq, exc, _SNAPSHOT_RETRY_S)
            self._snapshot_retry_at = time.monotonic() + _SNAPSHOT_RETRY_S
            return
        self._snapshot_seq = self.state.seq
        self._snapshot_at = time.monotonic()
        self.metrics.snapshots.inc()
        self.metrics.journal_bytes.set(self.journal.size_bytes())

    def _heartbeat(self) -> None:
        body = codec.pack({
            "ts": time.time(), "seq": self.state.seq, "pid": os.getpid(), "epoch": self.epoch,
            "degraded": self.degraded_reason,
            # The seq of each view's last frame: a subscriber whose copy is older missed that frame.
            "views": self._view_seqs,
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
        if self._dirty:
            self.files.submit({k: doc for k in self._dirty if (doc := self.state.document(k)) is not None})
            self._dirty.clear()
        # A disk that is refusing writes will not take them in the next seconds either; the
        # stop must stay well inside supervisord's stopwaitsecs.
        if not self.files.drain(timeout=1 if self.files.failing else 10):
            log.error("state files still pending at shutdown (disk failing?); the journal has them")
        self.files.stop()
        # While storage is refusing, the journal alone is the truth: no snapshot, replay on restart.
        if self.degraded_reason is None and self.state.seq > self._snapshot_seq:
            self.snapshot()
        try:
            self.journal.close()
        except OSError as exc:  # a read-only disk refuses the final fsync; every ACKed record was synced
            log.error("journal close: %s", exc)
        for hook in self.hooks:
            try:
                hook.close()
            except Exception:  # closing one hook must not keep the lock held
                log.exception("closing commit hook failed")
        self._close_sockets()
        if isinstance(self._metrics_server, tuple):
            self._metrics_server[0].shutdown()
        self.lock.release()
        self.started = False
        log.info("state writer stopped at seq %d%s", self.state.seq,
                 f" (commit hooks behind: {self.store_error}; replayed on start)" if self.store_error else "")

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close(linger=self.settings.bus.linger_ms)
        self._sockets = []
