"""The state writer's in-memory state: documents, de-duplication, heartbeats, pending intents.

Everything here is rebuilt exactly from (snapshot, journal tail), so it must be a pure
function of the committed messages in seq order: no clocks, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from bus.messages import STATE_DOCUMENTS

# Snapshot keys served besides the state documents.
HEARTBEATS_KEY = "heartbeats"
PENDING_INTENTS_KEY = "pending_intents"
PENDING_INTENTS_MAX = 10_000


@dataclass(slots=True)
class Stream:
    """One sender incarnation: the highest sseq committed and the seq it got."""

    max_sseq: int
    seq_of_max: int


class WriterState:
    def __init__(self, dedup_streams_max: int = 4096) -> None:
        self.seq = 0
        self.documents: dict[str, dict[str, Any]] = {}
        self.streams: OrderedDict[tuple[str, int], Stream] = OrderedDict()
        self.heartbeats: dict[str, dict[str, Any]] = {}
        self.pending_intents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.dedup_streams_max = dedup_streams_max

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
            self.streams[key] = Stream(sseq, seq)
            # Evict the least recently active incarnations: a sender that has been silent
            # for thousands of other incarnations is long dead and will never resend.
            while len(self.streams) > self.dedup_streams_max:
                self.streams.popitem(last=False)
        else:
            if sseq > stream.max_sseq:
                stream.max_sseq, stream.seq_of_max = sseq, seq
            self.streams.move_to_end(key)

    # --- applying committed messages -----------------------------------------------------------

    def apply(self, seq: int, src: str, inc: int, sseq: int, msg: dict[str, Any], state_key: str | None) -> None:
        """Apply one committed message given as its wire dict (validated at ingest or replayed).

        `state_key` is the document the message replaces; `msg` is then stored without its
        `type`/`v` tags (the caller passes the normalized form on the live path).
        """
        self.seq = seq
        self._record_stream(src, inc, sseq, seq)
        if state_key is not None:
            self.documents[state_key] = {k: v for k, v in msg.items() if k not in ("type", "v")}
        kind = msg.get("type")
        if kind == "heartbeat":
            self.heartbeats[str(msg.get("actor"))] = {**msg, "seq": seq}
        elif kind in ("order_intent", "exit_trigger"):
            intent_id = str(msg.get("intent_id"))
            self.pending_intents[intent_id] = {**msg, "seq": seq}
            while len(self.pending_intents) > PENDING_INTENTS_MAX:
                self.pending_intents.popitem(last=False)
        elif kind == "order_event" and msg.get("intent_done"):
            # The router marks the last event of an intent; until then a restarted router resumes it.
            self.pending_intents.pop(str(msg.get("intent_id")), None)

    # --- snapshot service ----------------------------------------------------------------------

    def keys(self) -> list[str]:
        return [*STATE_DOCUMENTS, HEARTBEATS_KEY, PENDING_INTENTS_KEY]

    def view(self, key: str) -> Any:
        if key in STATE_DOCUMENTS:
            return self.documents.get(key)
        if key == HEARTBEATS_KEY:
            return self.heartbeats
        if key == PENDING_INTENTS_KEY:
            return list(self.pending_intents.values())
        raise KeyError(key)

    # --- persistence (snapshot file) -----------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "documents": self.documents,
            "streams": [[src, inc, s.max_sseq, s.seq_of_max] for (src, inc), s in self.streams.items()],
            "heartbeats": self.heartbeats,
            "pending_intents": list(self.pending_intents.values()),
        }

    @classmethod
    def load(cls, data: dict[str, Any], dedup_streams_max: int = 4096) -> WriterState:
        state = cls(dedup_streams_max)
        state.seq = int(data["seq"])
        state.documents = dict(data.get("documents") or {})
        for src, inc, max_sseq, seq_of_max in data.get("streams") or []:
            state.streams[(src, inc)] = Stream(max_sseq, seq_of_max)
        state.heartbeats = dict(data.get("heartbeats") or {})
        for intent in data.get("pending_intents") or []:
            state.pending_intents[str(intent["intent_id"])] = intent
        return state
