"""The state writer's in-memory state: documents, sender streams, heartbeats, pending intents.

Everything here is rebuilt exactly from (snapshot, journal tail), so it must be a pure
function of the committed messages in seq order: no clocks, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from bus.messages import (
    STATE_DOCUMENTS,
    HaltEntries,
    Heartbeat,
    Message,
    NavState,
    OrderUpdated,
    RequestExit,
    ResetNavPeak,
    ResumeEntries,
    SubmitOrder,
)
from bus.messages.legacy_v1 import V1Upgrader
from bus.protocol import PROTOCOL_VERSION

# Snapshot keys served besides the state documents.
HEARTBEATS_KEY = "heartbeats"
PENDING_INTENTS_KEY = "pending_intents"
PENDING_INTENTS_MAX = 10_000
# NAV over time for charts (the dashboard survives its own restart with the curve intact):
# one point per NAV_HISTORY_STEP_S of the samples' own timestamps, the newest NAV_HISTORY_MAX.
NAV_HISTORY_KEY = "nav_history"
# The newest operator peak reset, so a sync that was down when it was committed still applies it.
NAV_PEAK_RESET_KEY = "nav_peak_reset"
# The newest halt_entries / resume_entries per "MODE/account": whether new entries may open.
ENTRY_HALTS_KEY = "entry_halts"
NAV_HISTORY_STEP_S = 5.0
NAV_HISTORY_MAX = 8640  # 12 hours at one point per 5 s
# Actors whose last heartbeat is kept. A real group has about ten; a client inventing a new
# actor name per heartbeat grew this map (and every snapshot) without bound.
HEARTBEAT_ACTORS_MAX = 1024

# Types whose full content the in-memory state keeps (others only move the stream and seq).
_INTENTS = frozenset({SubmitOrder.TYPE, RequestExit.TYPE})
_HALTS = frozenset({HaltEntries.TYPE, ResumeEntries.TYPE})
_KEPT_TYPES = frozenset({Heartbeat.TYPE, *_INTENTS, OrderUpdated.TYPE, NavState.TYPE, ResetNavPeak.TYPE, *_HALTS})


def _epoch(value: Any) -> float | None:
    """An ISO 8601 timestamp as unix seconds (a naive one is UTC); None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()

StreamKey = tuple[str, int]


@dataclass(slots=True)
class Stream:
    """One sender incarnation (src, inc).

    max_sseq: highest sseq committed; anything at or below it is a duplicate.
    answered: every sseq at or below it was committed or refused (memory only; >= max_sseq).
    """

    max_sseq: int
    seq_of_max: int
    answered: int


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


class StreamView:
    """The streams as one ingest batch sees them: the table plus the batch's steps not yet durable.

    Nothing reaches the table until the batch is journaled (`commit`); a failed batch leaves
    the table exactly as it was, so its messages are judged afresh when they are resent.
    Steps are (max_sseq, seq_of_max, answered) tuples: this runs once per message.
    """

    def __init__(self, state: WriterState) -> None:
        self._streams = state.streams
        self._steps: dict[StreamKey, tuple[int, int, int]] = {}

    def _get(self, key: StreamKey) -> tuple[int, int, int] | None:
        step = self._steps.get(key)
        if step is None:
            stream = self._streams.get(key)
            if stream is not None:
                return stream.max_sseq, stream.seq_of_max, stream.answered
        return step

    def admit(self, src: str, inc: int, sseq: int, oldest: int) -> tuple[Verdict, int, bool]:
        """(verdict, seq or expected sseq, decided by this batch).

        The in-order rule: sseq may commit only if every lower sseq of the stream was answered,
        or the sender promises (`oldest == sseq`) never to send a lower one again.
        """
        key = (src, inc)
        max_sseq, seq_of_max, answered = self._get(key) or (0, 0, 0)
        if sseq <= max_sseq:
            stream = self._streams.get(key)
            in_batch = key in self._steps and sseq > (stream.max_sseq if stream else 0)
            return Verdict.DUPLICATE, (seq_of_max if sseq == max_sseq else 0), in_batch
        if sseq <= answered + 1 or oldest == sseq:
            return Verdict.NEW, 0, False
        return Verdict.OUT_OF_ORDER, answered + 1, False

    def accepted(self, src: str, inc: int, sseq: int, seq: int) -> None:
        old = self._get((src, inc))
        self._steps[(src, inc)] = (sseq, seq, max(sseq, old[2]) if old else sseq)

    def refused(self, src: str, inc: int, sseq: int) -> None:
        """A NACKed message counts as answered; only streams already known are tracked."""
        old = self._get((src, inc))
        if old is not None and sseq == old[2] + 1:
            self._steps[(src, inc)] = (old[0], old[1], sseq)

    def commit(self) -> None:
        """The batch is durable: its answered marks join the table (commits were applied already)."""
        for key, (_max_sseq, _seq, answered) in self._steps.items():
            stream = self._streams.get(key)
            if stream is not None:
                stream.answered = max(stream.answered, answered)


class WriterState:
    def __init__(self, dedup_streams_max: int = 4096) -> None:
        self.seq = 0
        # key -> the document as a dict, or the committed message not yet rendered (rendering
        # is deferred to the tick, so a burst of updates to one document costs one dump)
        self._documents: dict[str, dict[str, Any] | Message] = {}
        self.streams: OrderedDict[StreamKey, Stream] = OrderedDict()
        self.heartbeats: OrderedDict[str, dict[str, Any]] = OrderedDict()  # least recently heard first
        self.pending_intents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.nav_history: deque[dict[str, float]] = deque(maxlen=NAV_HISTORY_MAX)
        self.nav_peak_reset: dict[str, Any] | None = None
        self.entry_halts: dict[str, dict[str, Any]] = {}
        self.dedup_streams_max = dedup_streams_max

    # --- documents -----------------------------------------------------------------------------

    def document(self, key: str) -> dict[str, Any] | None:
        doc = self._documents.get(key)
        if isinstance(doc, Message):
            doc = doc.to_document()
            self._documents[key] = doc
        return doc

    def documents(self) -> dict[str, dict[str, Any]]:
        out = {}
        for key in list(self._documents):
            doc = self.document(key)
            if doc is not None:
                out[key] = doc
        return out

    def replace_document(self, key: str, doc: dict[str, Any]) -> None:
        self._documents[key] = doc

    # --- de-duplication ------------------------------------------------------------------------

    def duplicate_of(self, src: str, inc: int, sseq: int) -> int | None:
        """The seq a message was committed as (0 if no longer known), or None if it is new."""
        stream = self.streams.get((src, inc))
        if stream is None or sseq > stream.max_sseq:
            return None
        return stream.seq_of_max if sseq == stream.max_sseq else 0

    def _record_stream(self, src: str, inc: int, sseq: int, seq: int) -> None:
        key = (src, inc)
        stream = self.streams.get(key)
        if stream is None:
            self.streams[key] = Stream(sseq, seq, sseq)
            # Evict the least recently active incarnations: a sender that has been silent
            # for thousands of other incarnations is long dead and will never resend.
            while len(self.streams) > self.dedup_streams_max:
                self.streams.popitem(last=False)
        else:
            if sseq > stream.max_sseq:
                stream.max_sseq, stream.seq_of_max = sseq, seq
                stream.answered = max(stream.answered, sseq)
            self.streams.move_to_end(key)

    # --- applying committed messages -----------------------------------------------------------

    def apply_message(self, seq: int, src: str, inc: int, sseq: int, msg: Message) -> None:
        """Apply one committed, validated message (the live path)."""
        self.seq = seq
        self._record_stream(src, inc, sseq, seq)
        if msg.STATE_KEY is not None:
            self._documents[msg.STATE_KEY] = msg
        if msg.TYPE in _KEPT_TYPES:
            self._apply_kept(seq, msg.to_wire())

    def apply(self, seq: int, src: str, inc: int, sseq: int, msg: dict[str, Any], state_key: str | None) -> None:
        """Apply one committed message given as its wire dict (replay of the journal)."""
        self.seq = seq
        self._record_stream(src, inc, sseq, seq)
        if state_key is not None:
            self._documents[state_key] = {k: v for k, v in msg.items() if k not in ("type", "v")}
        if msg.get("type") in _KEPT_TYPES:
            self._apply_kept(seq, msg)

    def _apply_kept(self, seq: int, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == Heartbeat.TYPE:
            actor = str(msg.get("actor"))
            self.heartbeats.pop(actor, None)
            self.heartbeats[actor] = {**msg, "seq": seq}
            while len(self.heartbeats) > HEARTBEAT_ACTORS_MAX:
                self.heartbeats.popitem(last=False)
        elif kind in _INTENTS:
            intent_id = str(msg.get("intent_id"))
            self.pending_intents[intent_id] = {**msg, "seq": seq}
            while len(self.pending_intents) > PENDING_INTENTS_MAX:
                self.pending_intents.popitem(last=False)
        elif kind == OrderUpdated.TYPE and msg.get("intent_done"):
            # The router marks the last event of an intent; until then a restarted router resumes it.
            self.pending_intents.pop(str(msg.get("intent_id")), None)
        elif kind == NavState.TYPE:
            self._record_nav(msg)
        elif kind == ResetNavPeak.TYPE:
            self.nav_peak_reset = {**msg, "seq": seq}
        elif kind in _HALTS:
            self.entry_halts[f"{msg.get('mode')}/{msg.get('account')}"] = {**msg, "seq": seq}

    def _record_nav(self, msg: dict[str, Any]) -> None:
        t = _epoch(msg.get("updated_at"))
        if t is None:
            return
        point = {"t": t, "nav": float(msg["nav_total"]), "peak": float(msg["peak_nav"]), "dd_pct": float(msg["dd_pct"])}
        history = self.nav_history
        if history and t < history[-1]["t"]:
            return  # a sample older than the curve (clock step) would fold it back on itself
        # The newest sample of each step-wide bucket stands for it.
        if history and t // NAV_HISTORY_STEP_S == history[-1]["t"] // NAV_HISTORY_STEP_S:
            history[-1] = point
        else:
            history.append(point)

    # --- snapshot service ----------------------------------------------------------------------

    def keys(self) -> list[str]:
        return [*STATE_DOCUMENTS, HEARTBEATS_KEY, PENDING_INTENTS_KEY, NAV_HISTORY_KEY, NAV_PEAK_RESET_KEY,
                ENTRY_HALTS_KEY]

    def view(self, key: str) -> Any:
        if key in STATE_DOCUMENTS:
            return self.document(key)
        if key == HEARTBEATS_KEY:
            return self.heartbeats
        if key == PENDING_INTENTS_KEY:
            return list(self.pending_intents.values())
        if key == NAV_HISTORY_KEY:
            return list(self.nav_history)
        if key == NAV_PEAK_RESET_KEY:
            return self.nav_peak_reset
        if key == ENTRY_HALTS_KEY:
            return self.entry_halts
        raise KeyError(key)

    # --- persistence (snapshot file) -----------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "seq": self.seq,
            "documents": self.documents(),
            "streams": [[src, inc, s.max_sseq, s.seq_of_max] for (src, inc), s in self.streams.items()],
            "heartbeats": self.heartbeats,
            "pending_intents": list(self.pending_intents.values()),
            "nav_history": list(self.nav_history),
            "nav_peak_reset": self.nav_peak_reset,
            "entry_halts": self.entry_halts,
        }

    @classmethod
    def load(cls, data: dict[str, Any], dedup_streams_max: int = 4096,
             upgrader: V1Upgrader | None = None) -> WriterState:
        """From a snapshot's dump; a protocol-1 dump (no `protocol` key) is upgraded on the way."""
        state = cls(dedup_streams_max)
        up = upgrader if data.get("protocol", 1) == 1 else None
        msg = up.message if up is not None else (lambda m: m)
        state.seq = int(data["seq"])
        # Documents of any protocol may predate their `scope` field.
        state._documents = {k: upgrader.document(k, d) if upgrader is not None else d
                            for k, d in (data.get("documents") or {}).items()}
        for src, inc, max_sseq, seq_of_max in data.get("streams") or []:
            state.streams[(src, inc)] = Stream(max_sseq, seq_of_max, max_sseq)
        state.heartbeats = OrderedDict((k, msg(v)) for k, v in (data.get("heartbeats") or {}).items())
        for intent in data.get("pending_intents") or []:
            state.pending_intents[str(intent["intent_id"])] = msg(intent)
        state.nav_history.extend(data.get("nav_history") or [])
        reset = data.get("nav_peak_reset")
        state.nav_peak_reset = msg(reset) if reset is not None else None
        state.entry_halts = dict(data.get("entry_halts") or {})
        return state
