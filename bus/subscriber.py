"""Subscriber: the Clone pattern's client. Snapshot, then stream, drop anything not newer.

1. SUB connects to the updates endpoint and subscribes to everything (global seq gaps are
   only detectable when every update is seen; filtering by topic happens here).
2. It waits for the first frame from the hub (the hub sends a heartbeat as soon as it sees a
   subscription), so the subscription is known to be live before the snapshot is taken;
   frames arriving meanwhile are buffered.
3. A snapshot request returns the state documents and the seq they are valid at.
4. Updates with seq <= snapshot seq are dropped; seq == last + 1 is applied; anything
   else is a gap and triggers a fresh snapshot. A hub heartbeat announcing a seq we have
   not seen is a gap too; a heartbeat with a new epoch (the hub restarted) re-snapshots.
5. No frame from the hub for `silent_after_s` means the hub is silent: reconnect and
   re-snapshot (Pirate pattern: a fresh socket, not a retry on the old one).
6. Store views (`open_positions`, `pnl_today`, ...) are kept like documents: taken from the
   snapshot, then from `$view:<key>` frames, which carry the seq of the last committed
   message they reflect: older than ours is stale (dropped), equal is applied, newer means
   we missed updates (re-snapshot). A hub heartbeat naming a view frame newer than our copy
   means we missed that frame (re-snapshot).

The owner drives it: call `poll(timeout_s)` from the actor loop; it returns what is new, in
stream order: an `Update` per committed message and a `ViewChanged` per view frame applied.
It keeps `documents` (state key -> document dict) and the views (`view(key)`) current.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import zmq

from bus import codec
from bus.codec import BusError, Envelope
from bus.messages import STATE_DOCUMENTS, VIEW_KEYS, Message
from bus.protocol import HUB_TOPIC, VIEW_TOPIC_PREFIX, unpack_seq
from bus.sockets import connect
from config.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Update:
    seq: int
    topic: str
    envelope: Envelope

    @property
    def msg(self) -> Message:
        return self.envelope.msg


@dataclass(frozen=True, slots=True)
class ViewChanged:
    """A store view the hub published because it changed; `value` is what a snapshot of `key` returns
    as of the committed message `seq` (e.g. the `open_positions` list)."""

    key: str
    seq: int
    value: Any


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    epoch: int
    state: dict[str, Any]


class SnapshotError(Exception):
    """The hub did not answer a snapshot request in time (it may be down); retried by the caller."""


_req_ids = itertools.count(1)


def _ask(settings: Settings, request: dict[str, Any], timeout_s: float, context: zmq.Context | None,
         max_bytes: int = 256 << 20) -> dict[str, Any]:
    """One request/reply on the snapshot endpoint, on a fresh DEALER (lazy pirate: a socket that
    timed out is never reused). Raises SnapshotError on no answer or an error answer."""
    ctx = context or zmq.Context.instance()
    # Stays IMMEDIATE (as connected): changing it on a connected DEALER makes libzmq abort the
    # process (socket_base.cpp assertion) if the hub restarts and the pipe reconnects.
    sock = connect(ctx, zmq.DEALER, settings.snapshot_endpoint, settings)
    try:
        req = next(_req_ids)
        deadline = time.monotonic() + timeout_s
        # With IMMEDIATE and no hub there is no pipe, and a plain send would block forever.
        if not sock.poll(int(timeout_s * 1000), zmq.POLLOUT):
            raise SnapshotError(f"hub not reachable at {settings.snapshot_endpoint} within {timeout_s}s")
        sock.send(codec.pack({**request, "req": req}), zmq.NOBLOCK)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000), zmq.POLLIN):
                raise SnapshotError(f"no {request['op']} reply from {settings.snapshot_endpoint} in {timeout_s}s")
            reply = codec.unpack(sock.recv(), max_bytes=max_bytes)
            if isinstance(reply, dict) and reply.get("req") == req:
                break
    finally:
        sock.close(0)
    if "error" in reply:
        raise SnapshotError(f"{request['op']} refused: {reply['error']} {reply.get('detail', '')}".rstrip())
    reply.pop("req", None)
    return reply


def request_snapshot(
    settings: Settings,
    keys: Iterable[str] | None = None,
    timeout_s: float = 3.0,
    context: zmq.Context | None = None,
) -> Snapshot:
    """The state documents (all, or `keys`) and the seq they are valid at."""
    reply = _ask(settings, {"op": "snapshot", "keys": list(keys) if keys is not None else None}, timeout_s, context)
    try:
        return Snapshot(seq=int(reply["seq"]), epoch=int(reply.get("epoch", 0)), state=reply.get("state") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"malformed snapshot reply: {exc!r}") from None


def request_status(settings: Settings, timeout_s: float = 3.0, context: zmq.Context | None = None) -> dict[str, Any]:
    """The hub's status map (seq, epoch, pid, degraded, files_failing, keys, journal_bytes, streams)."""
    return _ask(settings, {"op": "status"}, timeout_s, context, max_bytes=1 << 20)


_JOIN_BUFFER_MAX = 100_000
_VIEW_MAX_BYTES = 256 << 20  # a view frame is as large as the view (a snapshot reply may be too)


class Subscriber:
    def __init__(
        self,
        settings: Settings,
        *,
        keys: Iterable[str] | None = None,
        topics: Iterable[str] | None = None,
        context: zmq.Context | None = None,
        silent_after_heartbeats: int = 5,
    ) -> None:
        self._settings = settings
        self._ctx = context or zmq.Context.instance()
        self.keys = list(keys) if keys is not None else None
        self.topics = set(topics) if topics is not None else None
        self.silent_after_s = silent_after_heartbeats * settings.bus.heartbeat_s
        self.documents: dict[str, dict[str, Any]] = {}
        self.views: dict[str, Any] = {}  # store view key -> its latest value (snapshot, then $view frames)
        self._view_seq: dict[str, int] = {}  # view key -> the seq its value is known to be current at
        self.snapshot_state: dict[str, Any] = {}
        self.seq = 0
        self.snapshot_seq = 0  # the seq the last snapshot was valid at
        self.epoch = 0
        self.synced = False
        self.snapshots = 0
        self.gaps = 0
        self.reconnects = 0
        self.undecodable = 0
        self.hub_last_seen = 0.0
        self._sub: zmq.Socket | None = None
        self._joined = False  # a frame arrived on this SUB: the subscription is live
        self._buffer: list[list[bytes]] = []
        self._held: list[Update | ViewChanged] = []  # applied by wait_synced, handed out by the next poll

    # --- lifecycle -----------------------------------------------------------------------------

    def _open(self) -> None:
        if self._sub is not None:
            self._sub.close(0)
        self._sub = connect(self._ctx, zmq.SUB, self._settings.updates_endpoint, self._settings)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.synced = False
        self._joined = False
        self._buffer = []

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close(0)
            self._sub = None

    @property
    def socket(self) -> zmq.Socket | None:
        """The SUB socket to poll (None before the first `poll`; replaced after a silent hub)."""
        return self._sub

    @property
    def hub_alive(self) -> bool:
        return self.synced and time.monotonic() - self.hub_last_seen < self.silent_after_s

    def _resnapshot(self) -> bool:
        try:
            snap = request_snapshot(self._settings, self.keys, context=self._ctx)
        except (SnapshotError, BusError) as exc:
            log.info("snapshot not available yet: %s", exc)
            self.synced = False
            return False
        self.snapshots += 1
        self.seq = self.snapshot_seq = snap.seq
        self.epoch = snap.epoch
        self.snapshot_state = snap.state
        self.documents = {k: v for k, v in snap.state.items() if k in STATE_DOCUMENTS and v is not None}
        self.views = {k: v for k, v in snap.state.items() if k in VIEW_KEYS}
        self._view_seq = dict.fromkeys(self.views, snap.seq)
        self.synced = True
        self.hub_last_seen = time.monotonic()
        return True

    # --- the loop ------------------------------------------------------------------------------

    def poll(self, timeout_s: float = 0.0) -> list[Update | ViewChanged]:
        """Drain the updates socket (waiting up to `timeout_s` for the first frame): the committed
        messages (`Update`) and the view changes (`ViewChanged`, for views among `keys`) in stream order.
        After a (re)snapshot, `view(key)` holds the snapshot's value and `snapshots` has grown."""
        if self._sub is None:
            self._open()
        assert self._sub is not None
        out, self._held = self._held, []
        if not self.synced and not self._join(timeout_s, out):
            return out
        wait_ms = int(timeout_s * 1000)
        while self.synced:
            if not self._sub.poll(wait_ms, zmq.POLLIN):
                break
            wait_ms = 0
            if not self._on_frames(self._sub.recv_multipart(), out):
                self._resync()
                break
        if self.synced and time.monotonic() - self.hub_last_seen > self.silent_after_s:
            log.warning("hub silent for %.1fs; reconnecting", time.monotonic() - self.hub_last_seen)
            self.reconnects += 1
            self._open()
        return out

    def _join(self, timeout_s: float, out: list[Update | ViewChanged]) -> bool:
        """Wait for the subscription to be live, snapshot, then apply what arrived meanwhile."""
        assert self._sub is not None
        if not self._joined:
            if not self._sub.poll(int(timeout_s * 1000), zmq.POLLIN):
                return False
            self._joined = True
        while self._sub.poll(0, zmq.POLLIN) and len(self._buffer) < _JOIN_BUFFER_MAX:
            self._buffer.append(self._sub.recv_multipart())
        if not self._resnapshot():
            self._buffer = []
            time.sleep(min(timeout_s, 0.2))
            return False
        buffered, self._buffer = self._buffer, []
        for frames in buffered:
            if not self._on_frames(frames, out):
                self._resync()
                break
        return self.synced

    def _resync(self) -> None:
        self.gaps += 1
        self._resnapshot()

    def _wants_view(self, key: str) -> bool:
        return self.keys is None or key in self.keys

    def _on_frames(self, frames: list[bytes], out: list[Update | ViewChanged]) -> bool:
        """Apply one frame set; False means we are out of step with the hub (re-snapshot)."""
        self.hub_last_seen = time.monotonic()
        if len(frames) != 3 or len(frames[1]) != 8:
            return True
        topic, seq_frame, body = frames
        seq = unpack_seq(seq_frame)
        if topic == HUB_TOPIC:
            return self._on_heartbeat(seq, body)
        if topic.startswith(VIEW_TOPIC_PREFIX):
            return self._on_view(topic[len(VIEW_TOPIC_PREFIX):], seq, body, out)
        if seq <= self.seq:
            return True
        if seq != self.seq + 1:
            log.info("seq gap: have %d, got %d", self.seq, seq)
            return False
        self.seq = seq
        try:
            envelope = codec.decode_envelope(body, max_bytes=self._settings.bus.max_frame_bytes)
        except BusError as exc:
            # The hub only republishes what it validated; a newer schema than ours lands here.
            self.undecodable += 1
            log.warning("undecodable update seq=%d topic=%r: %s", seq, topic, exc)
            return True
        msg = envelope.msg
        if msg.STATE_KEY is not None and (self.keys is None or msg.STATE_KEY in self.keys):
            self.documents[msg.STATE_KEY] = msg.to_document()
        if self.topics is None or msg.TYPE in self.topics:
            out.append(Update(seq=seq, topic=msg.TYPE, envelope=envelope))
        return True

    def _on_heartbeat(self, seq: int, body: bytes) -> bool:
        try:
            hb = codec.unpack(body)
            epoch = int(hb.get("epoch", 0))
            views = hb.get("views")
        except (BusError, AttributeError, TypeError, ValueError):
            epoch, views = 0, None
        if epoch and self.epoch and epoch != self.epoch:
            log.info("hub restarted (epoch %d -> %d); re-snapshotting", self.epoch, epoch)
            return False
        if seq > self.seq:
            return False
        if isinstance(views, dict):
            for key, at in views.items():
                if (type(at) is int and isinstance(key, str) and self._wants_view(key)
                        and at > self._view_seq.get(key, self.snapshot_seq)):
                    log.info("view %s: the frame at seq %d never arrived; re-snapshotting", key, at)
                    return False
        return True

    def _on_view(self, raw_key: bytes, seq: int, body: bytes, out: list[Update | ViewChanged]) -> bool:
        if seq < self.seq:
            return True  # older than the state we hold (a frame from before our snapshot)
        if seq > self.seq:
            log.info("view frame at seq %d, have %d: updates were missed", seq, self.seq)
            return False
        key = raw_key.decode(errors="replace")
        if not self._wants_view(key):
            return True
        try:
            doc = codec.unpack(body, max_bytes=_VIEW_MAX_BYTES)
            if doc["key"] != key:
                raise ValueError(f"body names {str(doc['key'])[:64]!r}")
            value = doc["value"]
        except (BusError, KeyError, TypeError, ValueError) as exc:
            self.undecodable += 1
            log.warning("undecodable view frame %r at seq %d: %s", key[:64], seq, exc)
            return True
        self.views[key] = value
        self._view_seq[key] = seq
        out.append(ViewChanged(key=key, seq=seq, value=value))
        return True

    def view(self, key: str) -> Any:
        """The latest value of the store view `key` (as the snapshot service returns it), or None if
        the hub never served it to this subscriber (not among `keys`, or a hub without that view)."""
        return self.views.get(key)

    def wait_synced(self, timeout_s: float) -> bool:
        """Poll until in sync; updates applied meanwhile are returned by the next `poll`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._held = self.poll(0.05)
            if self.synced:
                return True
        return False

    def document(self, key: str) -> Message | None:
        """The current state document `key` as its typed message, or None if absent."""
        raw = self.documents.get(key)
        return None if raw is None else STATE_DOCUMENTS[key].model_validate(raw)
