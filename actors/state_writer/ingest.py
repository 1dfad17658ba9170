"""One ingest batch judged: decode, validate, authorize, de-duplicate and order, give seqs. No I/O.

The server reads a batch of frames from its ROUTER, hands them here, journals what comes back
as `accepted`, then sends the replies. This is the hottest code in the writer (every message
passes through it once), so the loop binds what it calls to locals; it stays a plain loop.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.state_writer.authority import Authority
from actors.state_writer.hooks import Admission, Committed
from actors.state_writer.state import StreamView, Verdict, WriterState
from bus import codec
from bus.codec import BusError
from bus.messages import REGISTRY
from bus.protocol import ErrorCode
from bus.replies import Duplicate, Nack, OutOfOrder, Reply

DETAIL_MAX = 512

Replies = defaultdict[bytes, list[Reply]]


def _type_label(raw: Any) -> str:
    kind = raw.get("type") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) and kind in REGISTRY else "unknown"


@dataclass(slots=True)
class Inbound:
    """One frame set as read from the ROUTER: [identity, frame, ...] and the CURVE key's name, if any."""

    frames: list[bytes]
    key: str | None = None


@dataclass(slots=True)
class Judged:
    view: StreamView
    replies: Replies = field(default_factory=lambda: defaultdict(list))  # answers that need no commit
    accepted: list[tuple[bytes, bytes, Committed]] = field(default_factory=list)  # (identity, frame, c)
    deferred: list[tuple[bytes, Reply]] = field(default_factory=list)  # duplicates of this batch
    nacks: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, code) -> count
    duplicates: int = 0
    out_of_order: int = 0


_OPEN = Authority()


def judge(inbound: Sequence[Inbound], state: WriterState, max_bytes: int,
          admissions: Sequence[Admission] = (), authority: Authority = _OPEN) -> Judged:
    """Decide every frame of a batch; seqs for accepted messages follow `state.seq` gap-free.

    `authority` refuses a sender that may not send the message's type. `admissions` (one per
    commit hook, fresh per batch) may refuse a valid new message whose effect together with
    what is committed and what this batch accepted so far would break a bound (a position
    past 10^15): refused here, it never reaches the journal.
    """
    view = StreamView(state)
    out = Judged(view)
    replies, accepted, nacks = out.replies, out.accepted, out.nacks
    decode_header, decode_message, admit, take = codec.decode_header, codec.decode_message, view.admit, view.accepted
    authorize = authority.check
    new, duplicate = Verdict.NEW, Verdict.DUPLICATE
    next_seq = state.seq + 1
    for item in inbound:
        frames = item.frames
        identity = frames[0]
        if len(frames) != 2:
            replies[identity].append(Nack(None, ErrorCode.BAD_FRAMES, None,
                                          f"expected 1 frame after the identity, got {len(frames) - 1}"))
            nacks["unknown", ErrorCode.BAD_FRAMES.value] += 1
            continue
        frame = frames[1]
        try:
            head, raw = decode_header(frame, max_bytes)
        except BusError as err:
            replies[identity].append(Nack.of(codec.peek_sseq(frame, max_bytes), err, DETAIL_MAX))
            nacks["unknown", err.code.value] += 1
            continue
        src, inc, sseq = head.src, head.inc, head.sseq
        try:
            msg = decode_message(raw)
        except BusError as err:
            replies[identity].append(Nack.of(sseq, err, DETAIL_MAX))
            nacks[_type_label(raw), err.code.value] += 1
            view.refused(src, inc, sseq)
            continue
        refusal = authorize(src, msg, item.key)
        if refusal is not None:
            # Before de-duplication: an unauthorized sender learns nothing about the stream table.
            replies[identity].append(Nack.of(sseq, refusal, DETAIL_MAX))
            nacks[msg.TYPE, refusal.code.value] += 1
            view.refused(src, inc, sseq)
            continue
        verdict, number, in_batch = admit(src, inc, sseq, head.oldest)
        if verdict is new:
            refusal = next((r for a in admissions if (r := a.check(msg)) is not None), None)
            if refusal is not None:
                replies[identity].append(Nack.of(sseq, refusal, DETAIL_MAX))
                nacks[msg.TYPE, refusal.code.value] += 1
                view.refused(src, inc, sseq)
                continue
            # Journal and publish the validated form, never the bytes as sent: defaults filled in
            # (some, like `updated_at`, are the time of arrival, so a replay must see them), times
            # in UTC, types as documented. A replay then rebuilds exactly the same state.
            frame = codec.build_envelope(src, inc, sseq, head.oldest, head.ts, codec.pack_message(msg))
            if len(frame) > max_bytes:
                # Defaults can multiply a frame's size ({} per map entry becomes every field):
                # what is journaled and published must still fit every subscriber's limit.
                replies[identity].append(Nack(sseq, ErrorCode.FRAME_TOO_LARGE, None,
                                              f"completed with its defaults the message is {len(frame)} bytes, "
                                              f"over {max_bytes}; send every field"))
                nacks[msg.TYPE, ErrorCode.FRAME_TOO_LARGE.value] += 1
                view.refused(src, inc, sseq)
                continue
            take(src, inc, sseq, next_seq)
            accepted.append((identity, frame, Committed(next_seq, src, inc, sseq, msg)))
            next_seq += 1
        elif verdict is duplicate:
            out.duplicates += 1
            if in_batch:
                out.deferred.append((identity, Duplicate(sseq, number)))
            else:
                replies[identity].append(Duplicate(sseq, number))
        else:
            out.out_of_order += 1
            replies[identity].append(OutOfOrder(sseq, number))
    return out
