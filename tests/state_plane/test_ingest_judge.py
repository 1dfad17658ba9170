"""Ingest judging (actors/state_writer/ingest.py `judge`) and who may say what (authority.py), in process.

Real frames (bus.codec), real message models (tests/support/messages.py), a real WriterState and the
store's real admission (FillBounds); every reply, seq and counter is asserted exactly, so the mutation
run (tools/mutation.py ingest, authority) can afford them per mutant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actors.state_writer.authority import Authority
from actors.state_writer.hooks import Admission, Committed
from actors.state_writer.ingest import DETAIL_MAX, Inbound, Judged, judge
from actors.state_writer.state import Stream, WriterState
from actors.state_writer.store.bounds import FillBounds
from bus import codec
from bus.codec import BusError
from bus.messages import Message
from bus.protocol import DEFAULT_MAX_FRAME_BYTES, ErrorCode
from bus.replies import Duplicate, Nack, OutOfOrder
from tests.support.messages import fill, heartbeat, intent, kpis

TS = 1.5
MAX = DEFAULT_MAX_FRAME_BYTES
T0 = "2026-01-01T00:00:00Z"


def env(src: str, inc: int, sseq: int, msg: Message, oldest: int | None = None) -> bytes:
    return codec.encode_envelope(src, inc, sseq, msg, ts=TS, oldest=oldest)


def raw_env(src: str, inc: int, sseq: int, msg: Any, oldest: int | None = None) -> bytes:
    """An envelope around any msgpack value: messages the codec must refuse, or that lack defaults."""
    return codec.build_envelope(src, inc, sseq, sseq if oldest is None else oldest, TS, codec.pack(msg))


def at(identity: bytes, frame: bytes, key: str | None = None) -> Inbound:
    return Inbound([identity, frame], key)


def state_with(*streams: tuple[str, int, int, int]) -> WriterState:
    """A state whose streams (src, inc, max_sseq, seq) were committed; its seq is the last one."""
    state = WriterState()
    for src, inc, sseq, seq in streams:
        state.apply_message(seq, src, inc, sseq, kpis() if src == "executor" else heartbeat(src))
    return state


def run(items: Sequence[Inbound], state: WriterState, max_bytes: int = MAX,
        admissions: Sequence[Admission] = (), authority: Authority | None = None) -> Judged:
    if authority is None:
        return judge(items, state, max_bytes, admissions)
    return judge(items, state, max_bytes, admissions, authority)


def seqs(out: Judged) -> list[tuple[bytes, int, str, int, int]]:
    return [(i, c.seq, c.src, c.inc, c.sseq) for i, _f, c in out.accepted]


def hb_wire(actor: str, **drop_or_set: Any) -> dict[str, Any]:
    """A heartbeat's wire form with some fields left out (value None) or set."""
    wire = heartbeat(actor, pid=1).to_wire() | {"ts": T0, "started_at": T0}
    for key, value in drop_or_set.items():
        if value is None:
            wire.pop(key)
        else:
            wire[key] = value
    return wire


# ---- accepted messages: seqs, frames, stream steps ------------------------------------------

def test_accepted_messages_take_gap_free_seqs_after_state_seq() -> None:
    state = state_with(("executor", 1, 3, 7))
    a4, a5, b1 = kpis(), kpis(), heartbeat("router")
    f4, f5, fb = env("executor", 1, 4, a4, oldest=1), env("executor", 1, 5, a5, oldest=2), env("router", 2, 1, b1)
    out = run([at(b"a", f4), at(b"c", b"junk"), at(b"b", fb), at(b"a", f5)], state)
    assert seqs(out) == [(b"a", 8, "executor", 1, 4), (b"b", 9, "router", 2, 1), (b"a", 10, "executor", 1, 5)]
    # The validated form is journaled, rebuilt with the sender's header (oldest and ts kept).
    assert [f for _i, f, _c in out.accepted] == [f4, fb, f5]
    assert [c.msg for _i, _f, c in out.accepted] == [a4, b1, a5]
    assert all(isinstance(c, Committed) for _i, _f, c in out.accepted)
    assert dict(out.replies) == {b"c": [Nack(None, ErrorCode.MALFORMED, None, "not a msgpack document: ExtraData")]}
    assert (out.deferred, out.duplicates, out.out_of_order) == ([], 0, 0)
    assert out.nacks == {("unknown", "malformed"): 1}
    # Judging is no commit: the table is untouched until the batch is journaled and applied.
    assert (state.seq, state.streams[("executor", 1)]) == (7, Stream(3, 7, 3))
    assert ("router", 2) not in state.streams


def test_an_empty_batch_judges_nothing() -> None:
    out = run([], state_with(("executor", 1, 3, 7)))
    assert (out.accepted, dict(out.replies), out.deferred, out.nacks) == ([], {}, [], {})
    assert (out.duplicates, out.out_of_order) == (0, 0)


def test_the_defaults_are_filled_in_before_journaling() -> None:
    wire = hb_wire("router", loops=None, status=None, detail=None)
    out = run([at(b"a", raw_env("router", 1, 1, wire))], WriterState())
    (_i, frame, c), = out.accepted
    assert codec.decode_envelope(frame).msg.to_wire() == {**wire, "loops": 0, "status": "running", "detail": ""}
    assert frame == codec.build_envelope("router", 1, 1, 1, TS, codec.pack_message(c.msg))


# ---- refusals: frames, envelope, message --------------------------------------------------

def test_wrong_frame_counts_are_refused_and_the_batch_goes_on() -> None:
    ok = env("executor", 1, 1, kpis())
    out = run([Inbound([b"x"]), Inbound([b"y", ok, ok]), at(b"z", ok)], WriterState())
    assert dict(out.replies) == {
        b"x": [Nack(None, ErrorCode.BAD_FRAMES, None, "expected 1 frame after the identity, got 0")],
        b"y": [Nack(None, ErrorCode.BAD_FRAMES, None, "expected 1 frame after the identity, got 2")]}
    assert out.nacks == {("unknown", "bad_frames"): 2}
    assert seqs(out) == [(b"z", 1, "executor", 1, 1)]


def test_envelope_refusals_name_the_sseq_they_can_and_cut_the_detail() -> None:
    ok = env("executor", 1, 1, kpis())
    no_src = codec.pack({"inc": 1, "sseq": 9, "oldest": 9, "ts": TS, "msg": {}})
    extra = {f"extra_key_{i:02}_{'x' * 20}": i for i in range(24)}
    wide = codec.pack({"src": "executor", "inc": 1, "sseq": 6, "oldest": 6, "ts": TS, "msg": {}, **extra})
    out = run([at(b"a", no_src), at(b"b", wide), at(b"c", ok)], WriterState())
    (wide_nack,) = out.replies[b"b"]
    assert out.replies[b"a"] == [Nack(9, ErrorCode.MALFORMED, "src", "envelope has no 'src'")]
    assert wide_nack[:3] == (6, ErrorCode.MALFORMED, "extra_key_00_" + "x" * 19)  # keys cut to 32 characters
    assert len(wide_nack.detail) == DETAIL_MAX == 512
    assert wide_nack.detail == "envelope keys must be exactly ['inc', 'msg', 'oldest', 'src', 'sseq', 'ts']; extra " \
        f"{sorted(k[:32] for k in extra)}"[:512]
    assert out.nacks == {("unknown", "malformed"): 2}
    assert seqs(out) == [(b"c", 1, "executor", 1, 1)]


def test_a_frame_over_the_limit_is_refused_without_its_sseq() -> None:
    big, ok = env("executor", 1, 5, kpis()), env("router", 1, 1, heartbeat("router"))
    limit = len(big) - 1
    assert len(ok) <= limit
    out = run([at(b"a", big), at(b"b", ok)], WriterState(), max_bytes=limit)
    assert dict(out.replies) == {
        b"a": [Nack(None, ErrorCode.FRAME_TOO_LARGE, None, f"frame of {len(big)} bytes exceeds {limit}")]}
    assert out.nacks == {("unknown", "frame_too_large"): 1}
    assert seqs(out) == [(b"b", 1, "router", 1, 1)]


def test_message_refusals_are_counted_by_type_label() -> None:
    kpis_v1 = {**kpis().to_wire(), "v": 1}
    bad_nav = {**kpis().to_wire(), "portfolio": {"nav": "lots"}}
    items = [at(b"a", raw_env("executor", 1, 1, ["not", "a", "map"])),
             at(b"b", raw_env("executor", 1, 2, {"type": "nope", "v": 2})),
             at(b"c", raw_env("executor", 1, 3, {"type": 5, "v": 2})),
             at(b"d", raw_env("executor", 1, 4, {"type": ["unhashable"], "v": 2})),
             at(b"e", raw_env("executor", 1, 5, kpis_v1)),
             at(b"f", raw_env("executor", 1, 6, bad_nav)),
             at(b"g", env("executor", 1, 7, kpis()))]
    out = run(items, WriterState())
    assert dict(out.replies) == {
        b"a": [Nack(1, ErrorCode.MALFORMED, "msg", "message must be a map")],
        b"b": [Nack(2, ErrorCode.UNKNOWN_TYPE, "type", "unknown message type 'nope'")],
        b"c": [Nack(3, ErrorCode.MALFORMED, "type", "message has no string 'type'")],
        b"d": [Nack(4, ErrorCode.MALFORMED, "type", "message has no string 'type'")],
        b"e": [Nack(5, ErrorCode.UNSUPPORTED_VERSION, "v", "kpis_v7 v=1 not supported (supported: 2)")],
        b"f": [Nack(6, ErrorCode.INVALID_FIELD, "portfolio.nav", "kpis_v7: Input should be a valid number")]}
    assert out.nacks == {("unknown", "malformed"): 3, ("unknown", "unknown_type"): 1,
                         ("kpis_v7", "unsupported_version"): 1, ("kpis_v7", "invalid_field"): 1}
    assert seqs(out) == [(b"g", 1, "executor", 1, 7)]


def test_a_refused_message_counts_as_answered_in_its_stream() -> None:
    # Stream at sseq 3: a refused 4 lets 5 (oldest 1) in; without the mark 5 would be out of order.
    state = state_with(("executor", 1, 3, 7))
    items = [at(b"a", raw_env("executor", 1, 4, {"type": "nope", "v": 2}, oldest=1)),
             at(b"a", env("executor", 1, 5, kpis(), oldest=1))]
    out = run(items, state)
    assert seqs(out) == [(b"a", 8, "executor", 1, 5)]
    assert out.out_of_order == 0
    # The mark reaches the table only when the batch's view is committed (after the journal).
    out = run(items[:1], state)
    assert state.streams[("executor", 1)] == Stream(3, 7, 3)
    out.view.commit()
    assert state.streams[("executor", 1)] == Stream(3, 7, 4)


# ---- authorization ----------------------------------------------------------------------------

def test_a_sender_outside_the_producers_is_refused_before_de_duplication() -> None:
    state = state_with(("router", 1, 3, 7))
    items = [at(b"a", env("router", 1, 3, kpis(), oldest=1)),  # a duplicate sseq: still only "unauthorized"
             at(b"a", env("router", 1, 4, kpis(), oldest=1)),  # refused, so answered: 5 is in order
             at(b"a", env("router", 1, 5, heartbeat("router"), oldest=1)),
             at(b"b", env("cli", 1, 1, heartbeat("cli")))]
    out = run(items, state)
    refused = "'router' may not send kpis_v7 (producers: executor)"
    programs = "dashboard, diagnostics, exchange, executor, exit_scanner, router, sync"
    assert dict(out.replies) == {
        b"a": [Nack(3, ErrorCode.UNAUTHORIZED, "src", refused), Nack(4, ErrorCode.UNAUTHORIZED, "src", refused)],
        b"b": [Nack(1, ErrorCode.UNAUTHORIZED, "src", f"'cli' may not send heartbeat (producers: {programs})")]}
    assert (out.duplicates, out.out_of_order) == (0, 0)
    assert out.nacks == {("kpis_v7", "unauthorized"): 2, ("heartbeat", "unauthorized"): 1}
    assert seqs(out) == [(b"a", 8, "router", 1, 5)]


def test_a_heartbeat_speaks_for_its_sender_only() -> None:
    out = run([at(b"a", env("executor", 1, 1, heartbeat("router"))),
               at(b"b", env("executor", 1, 2, heartbeat("executor")))], WriterState())
    assert dict(out.replies) == {
        b"a": [Nack(1, ErrorCode.UNAUTHORIZED, "actor", "'executor' sent a heartbeat for 'router'")]}
    assert out.nacks == {("heartbeat", "unauthorized"): 1}
    assert seqs(out) == [(b"b", 1, "executor", 1, 2)]


def test_a_curve_key_speaks_as_its_own_name_or_its_listed_producers() -> None:
    authority = Authority({"ops": frozenset({"executor", "router"})})
    items = [at(b"a", env("executor", 1, 1, kpis()), key="ops"),
             at(b"b", env("router", 1, 1, heartbeat("router")), key="ops"),
             at(b"c", env("sync", 1, 1, heartbeat("sync")), key="ops"),
             at(b"d", env("sync", 1, 2, heartbeat("sync")), key="sync"),
             at(b"e", env("executor", 1, 2, kpis()), key="sync"),
             at(b"f", env("executor", 1, 3, kpis()))]
    out = run(items, WriterState(), authority=authority)
    assert dict(out.replies) == {
        b"c": [Nack(1, ErrorCode.UNAUTHORIZED, "src", "the CURVE key 'ops' may not speak as 'sync'")],
        b"e": [Nack(2, ErrorCode.UNAUTHORIZED, "src", "the CURVE key 'sync' may not speak as 'executor'")]}
    assert seqs(out) == [(b"a", 1, "executor", 1, 1), (b"b", 2, "router", 1, 1), (b"d", 3, "sync", 1, 2),
                         (b"f", 4, "executor", 1, 3)]
    # Without an authority of its own, judge holds senders to the producers but knows no key's metadata.
    out = run([at(b"a", env("executor", 1, 1, kpis()), key="ops")], WriterState())
    assert out.replies[b"a"] == [Nack(1, ErrorCode.UNAUTHORIZED, "src", "the CURVE key 'ops' may not speak as "
                                                                       "'executor'")]


def test_authority_details_quote_at_most_64_characters_of_each_name() -> None:
    long_src, long_key, long_actor = "s" * 100, "k" * 100, "a" * 100
    authority = Authority()
    assert authority.check("executor", kpis()) is None
    err = authority.check(long_src, kpis())
    assert err is not None
    assert (err.code, err.field, err.detail) == (ErrorCode.UNAUTHORIZED, "src",
                                                 f"'{'s' * 64}' may not send kpis_v7 (producers: executor)")
    err = authority.check("executor", kpis(), long_key)
    assert err is not None
    assert (err.field, err.detail) == ("src", f"the CURVE key '{'k' * 64}' may not speak as 'executor'")
    err = Authority({long_key: frozenset({"executor"})}).check("executor", heartbeat(long_actor), long_key)
    assert err is not None
    assert (err.field, err.detail) == ("actor", f"'executor' sent a heartbeat for '{'a' * 64}'")
    err = Authority().check(long_src, intent("i1", "BTCUSDT", "BUY", 1.0), None)
    assert err is not None
    assert err.detail == f"'{'s' * 64}' may not send submit_order (producers: cli, executor)"


# ---- de-duplication and order -----------------------------------------------------------------

def test_duplicates_name_the_seq_they_were_committed_as() -> None:
    state = state_with(("executor", 1, 3, 7))
    m = kpis()
    items = [at(b"a", env("executor", 1, 3, m)),  # the newest committed: its seq
             at(b"a", env("executor", 1, 2, m)),  # older: no longer known (0)
             at(b"b", env("executor", 1, 4, m)),
             at(b"c", env("executor", 1, 4, m)),  # a copy of one this batch accepts: answered after the commit
             at(b"a", env("executor", 1, 3, m)),  # below the batch's newest: its seq no longer named (0)
             at(b"d", env("executor", 2, 1, m)),  # a new incarnation
             at(b"e", env("executor", 2, 1, m))]
    out = run(items, state)
    assert dict(out.replies) == {b"a": [Duplicate(3, 7), Duplicate(2, 0), Duplicate(3, 0)]}
    assert out.deferred == [(b"c", Duplicate(4, 8)), (b"e", Duplicate(1, 9))]
    assert (out.duplicates, out.out_of_order, out.nacks) == (5, 0, {})
    assert seqs(out) == [(b"b", 8, "executor", 1, 4), (b"d", 9, "executor", 2, 1)]


def test_a_gap_is_out_of_order_unless_the_sender_gives_up_the_lower_sseqs() -> None:
    state = state_with(("executor", 1, 3, 7))
    items = [at(b"a", env("executor", 1, 6, kpis(), oldest=1)),  # 4 and 5 unanswered
             at(b"b", env("sync", 1, 3, heartbeat("sync"), oldest=2)),  # a new stream must start at 1
             at(b"a", env("executor", 1, 6, kpis(), oldest=6)),  # oldest == sseq: nothing lower will come
             at(b"b", env("sync", 1, 3, heartbeat("sync"), oldest=3))]
    out = run(items, state)
    assert dict(out.replies) == {b"a": [OutOfOrder(6, 4)], b"b": [OutOfOrder(3, 1)]}
    assert (out.out_of_order, out.duplicates, out.nacks) == (2, 0, {})
    assert seqs(out) == [(b"a", 8, "executor", 1, 6), (b"b", 9, "sync", 1, 3)]


# ---- admissions and the size after defaults -------------------------------------------------

class _LongRefusal:
    """A hook's admission (hooks.Admission) whose refusal is longer than a NACK's detail may be."""

    def check(self, msg: Message) -> BusError | None:
        return BusError(ErrorCode.BOUND_EXCEEDED, "y" * 600, "qty")


def test_admissions_refuse_a_new_message_and_count_what_they_accepted() -> None:
    big = 6e14
    items = [at(b"r", env("router", 1, 1, fill("t1", "i1", "BTCUSDT", "BUY", big, 1.0))),
             at(b"r", env("router", 1, 2, fill("t2", "i1", "BTCUSDT", "BUY", big, 1.0), oldest=1)),
             at(b"r", env("router", 1, 3, fill("t3", "i1", "BTCUSDT", "BUY", 1.0, 1.0), oldest=1)),
             at(b"r", env("router", 1, 1, fill("t1", "i1", "BTCUSDT", "BUY", big, 1.0))),
             at(b"x", env("executor", 1, 1, kpis()))]
    # Two admissions: each sees every new message; the first refusal is the answer.
    out = run(items, WriterState(), admissions=[FillBounds({}), FillBounds({})])
    assert dict(out.replies) == {b"r": [Nack(2, ErrorCode.BOUND_EXCEEDED, "qty",
                                             "fill t2 would take the SIM/paper BTCUSDT position to 1.2e+15 "
                                             "(entered 1.2e+15); a position is at most 1e+15")]}
    assert out.nacks == {("order_filled", "bound_exceeded"): 1}
    assert out.deferred == [(b"r", Duplicate(1, 0))]  # 3 is the stream's newest in this batch
    assert seqs(out) == [(b"r", 1, "router", 1, 1), (b"r", 2, "router", 1, 3), (b"x", 3, "executor", 1, 1)]


def test_any_admission_may_refuse_and_its_detail_is_cut() -> None:
    out = run([at(b"a", env("executor", 1, 1, kpis())), at(b"b", env("executor", 1, 2, kpis()))],
              WriterState(), admissions=[FillBounds({}), _LongRefusal()])
    assert dict(out.replies) == {b"a": [Nack(1, ErrorCode.BOUND_EXCEEDED, "qty", "y" * DETAIL_MAX)],
                                 b"b": [Nack(2, ErrorCode.BOUND_EXCEEDED, "qty", "y" * DETAIL_MAX)]}
    assert out.nacks == {("kpis_v7", "bound_exceeded"): 2}
    assert out.accepted == []


def test_a_message_too_large_once_completed_with_its_defaults_is_refused() -> None:
    # Defaults left out (loops, status): the sent frame fits, the journaled one is larger.
    short = raw_env("router", 1, 2, hb_wire("router", loops=None, status=None, detail="d" * 60))
    after = raw_env("router", 1, 3, hb_wire("router"), oldest=1)
    other = raw_env("router", 2, 1, hb_wire("router", loops=None, status=None, detail="d" * 60))
    completed = len(run([at(b"a", short)], WriterState()).accepted[0][1])
    assert len(short) < completed - 1 and len(after) < completed - 1
    fits = run([at(b"a", short)], WriterState(), max_bytes=completed)
    assert seqs(fits) == [(b"a", 1, "router", 1, 2)]
    state = state_with(("router", 1, 1, 4))
    out = run([at(b"a", short), at(b"a", after), at(b"b", other)], state, max_bytes=completed - 1)
    assert dict(out.replies) == {b"a": [Nack(2, ErrorCode.FRAME_TOO_LARGE, None,
                                             f"completed with its defaults the message is {completed} bytes, over "
                                             f"{completed - 1}; send every field")],
                                 b"b": [Nack(1, ErrorCode.FRAME_TOO_LARGE, None,
                                             f"completed with its defaults the message is {completed} bytes, over "
                                             f"{completed - 1}; send every field")]}
    assert out.nacks == {("heartbeat", "frame_too_large"): 2}
    # Refused, so answered: sseq 3 (oldest 1) is in order, and takes the next seq.
    assert seqs(out) == [(b"a", 5, "router", 1, 3)]
