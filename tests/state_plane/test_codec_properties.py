"""Properties of the codec and the models, over values generated from the models themselves.

- every message type: a valid message survives encode -> decode unchanged, and its completed
  wire form decodes to the same message (what the hub journals and republishes);
- a hostile value anywhere in a valid message, or any msgpack map as an envelope, or any
  mutation of a valid frame: a value or one `BusError` with a documented code, nothing else;
- what the hub keeps in memory from a message is the same whether it arrives live or is
  replayed from the journal, and survives a snapshot (dump -> msgpack -> load).

tests/state_plane/test_codec.py has the byte-level cases (random bytes, deep nesting,
extension types); these complement it. Example counts are bounded to keep `make test` short;
`pytest -m slow` runs the same properties with many more examples.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.state_writer.state import WriterState
from bus import codec
from bus.codec import BusError
from bus.messages import MESSAGE_TYPES, Message
from bus.protocol import ErrorCode
from tests.state_plane.strategies import U64_MAX, hostile_values, paths, replace_at, wire_message

# What a message (as opposed to its envelope) may be refused with.
MESSAGE_CODES = {ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TYPE, ErrorCode.UNSUPPORTED_VERSION,
                 ErrorCode.INVALID_FIELD, ErrorCode.CONTRACT_BREACH}
FRAME_CODES = MESSAGE_CODES | {ErrorCode.FRAME_TOO_LARGE}

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
TYPES = {cls.TYPE: cls for cls in MESSAGE_TYPES}
any_message = st.sampled_from(MESSAGE_TYPES).flatmap(wire_message)


# How many generated messages decoded, per property run: a property over messages that the decoder
# refused every time would assert nothing, so each run checks its count afterwards.
DECODED: dict[str, int] = {}


def _decode(raw: dict[str, Any]) -> Message | None:
    """The message, or None after checking the refusal is a documented code naming a field."""
    try:
        msg = codec.decode_message(raw)
    except BusError as err:
        assert err.code in MESSAGE_CODES, err
        assert err.detail
        return None
    DECODED[msg.TYPE] = DECODED.get(msg.TYPE, 0) + 1
    return msg


def _valid_ones(cls: type[Message] | None, before: dict[str, int]) -> None:
    """Valid inputs were generated and decoded (of `cls`, or of any type)."""
    if cls is not None:
        assert DECODED.get(cls.TYPE, 0) > before.get(cls.TYPE, 0), f"no generated {cls.TYPE} message decoded"
    else:
        assert sum(DECODED.values()) > sum(before.values()), "no generated message decoded"


def _check_round_trip(msg: Message) -> None:
    frame = codec.encode_envelope("prop", 1, 1, msg, ts=1.0)
    env = codec.decode_envelope(frame, max_bytes=1 << 30)
    assert env.msg == msg
    # The completed wire form (defaults filled in) is what is journaled: it must decode the same.
    wire = msg.to_wire()
    assert codec.decode_message(msgpack.unpackb(msgpack.packb(wire), raw=False)) == msg
    # A state document must be strict JSON (no NaN/inf) with the same content as the message.
    json.dumps(msg.to_document(), allow_nan=False)


def _round_trip_property(cls: type[Message], raw: dict[str, Any]) -> None:
    msg = _decode(raw)
    if msg is not None:
        assert type(msg) is cls
        _check_round_trip(msg)


@pytest.mark.parametrize("cls", MESSAGE_TYPES, ids=lambda c: c.TYPE)
def test_round_trip_every_type(cls: type[Message]) -> None:
    before = dict(DECODED)
    FAST(given(wire_message(cls))(lambda raw: _round_trip_property(cls, raw)))()
    _valid_ones(cls, before)


@pytest.mark.slow
@pytest.mark.parametrize("cls", MESSAGE_TYPES, ids=lambda c: c.TYPE)
def test_round_trip_every_type_long(cls: type[Message]) -> None:
    before = dict(DECODED)
    SLOW(given(wire_message(cls))(lambda raw: _round_trip_property(cls, raw)))()
    _valid_ones(cls, before)


def test_time_that_overflows_in_utc_is_refused_not_raised() -> None:
    # 9999-12-31T23:59:59-14:00 is year 10000 in UTC: this raised OverflowError out of pydantic
    # and took the state writer down (tests/state_plane/test_fuzz_live.py has the live case).
    raw = {"type": "heartbeat", "v": 2, "actor": "a", "pid": 1, "interval_s": 1.0,
           "started_at": "9999-12-31T23:59:59-14:00"}
    with pytest.raises(BusError) as err:
        codec.decode_message(raw)
    assert (err.value.code, err.value.field) == (ErrorCode.INVALID_FIELD, "started_at")
    with pytest.raises(BusError):
        codec.decode_message({**raw, "started_at": "0001-01-01T00:00:00+14:00"})


@st.composite
def _hostile_message(draw: st.DrawFn) -> dict[str, Any]:
    raw = draw(any_message)
    where = paths(raw)
    new = draw(hostile_values())
    if draw(st.booleans()) or not where:
        return {**raw, draw(st.text(max_size=12) | st.sampled_from(["type", "v", "qty", "price"])): new}
    return replace_at(raw, draw(st.sampled_from(where)), new)


def _hostile_property(raw: dict[str, Any]) -> None:
    msg = _decode(raw)
    if msg is not None:
        _check_round_trip(msg)


@FAST
@given(_hostile_message())
def test_hostile_value_anywhere_gives_a_message_or_a_bus_error(raw: dict[str, Any]) -> None:
    _hostile_property(raw)


@pytest.mark.slow
@SLOW
@given(_hostile_message())
def test_hostile_value_anywhere_long(raw: dict[str, Any]) -> None:
    _hostile_property(raw)


_scalar = (st.none() | st.booleans() | st.integers(-(1 << 63), U64_MAX) | st.floats() | st.text(max_size=12)
           | st.binary(max_size=12))
_value = st.recursive(_scalar, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
    st.text(max_size=6), kids, max_size=4), max_leaves=20)
_header_values = {
    "src": st.text(max_size=130) | _scalar,
    "inc": st.integers(-(1 << 63), U64_MAX) | _scalar,
    "sseq": st.integers(-(1 << 63), U64_MAX) | _scalar,
    "oldest": st.integers(-(1 << 63), U64_MAX) | _scalar,
    "ts": st.floats() | st.integers(-(1 << 63), U64_MAX) | _scalar,
    "msg": any_message | _value,
}


@st.composite
def _envelope_like(draw: st.DrawFn) -> Any:
    """A map with some, all or none of the envelope keys, each a plausible or hostile value, plus extras."""
    keys = draw(st.sets(st.sampled_from(sorted(_header_values))))
    env: dict[Any, Any] = {k: draw(_header_values[k]) for k in keys}
    env.update(draw(st.dictionaries(st.text(max_size=6), _value, max_size=2)))
    return env if draw(st.integers(0, 9)) else draw(_value)


def _frame_property(frame: bytes) -> None:
    try:
        env = codec.decode_envelope(frame)
    except BusError as err:
        assert err.code in FRAME_CODES, err
        sseq = codec.peek_sseq(frame)
        assert sseq is None or 0 < sseq <= U64_MAX
        return
    assert 0 < env.oldest <= env.sseq <= U64_MAX and 0 < len(env.src) <= codec.MAX_ID_LEN
    assert math.isfinite(env.ts)
    _check_round_trip(env.msg)


@FAST
@given(_envelope_like())
def test_any_msgpack_value_as_envelope(obj: Any) -> None:
    _frame_property(msgpack.packb(obj, use_bin_type=True))


@st.composite
def _mutated_frame(draw: st.DrawFn) -> bytes:
    raw = draw(any_message)
    msg = _decode(raw)
    frame = bytearray(codec.encode_envelope("m", 1, 1, msg, ts=1.0) if msg else msgpack.packb(
        {"src": "m", "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0, "msg": raw}))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(frame) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip":
            frame[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            frame[at:at] = draw(st.binary(min_size=1, max_size=9))
        elif action == "delete" and len(frame) > 1:
            del frame[at]
        elif action == "truncate":
            del frame[max(1, at):]
    return bytes(frame)


@FAST
@given(_mutated_frame())
def test_mutated_valid_frame(frame: bytes) -> None:
    _frame_property(frame)


@pytest.mark.slow
@SLOW
@given(_mutated_frame() | _envelope_like().map(lambda o: msgpack.packb(o, use_bin_type=True)))
def test_frames_long(frame: bytes) -> None:
    _frame_property(frame)


def _state_property(raws: list[dict[str, Any]]) -> None:
    live, replayed = WriterState(), WriterState()
    for seq, raw in enumerate(raws, start=1):
        msg = _decode(raw)
        if msg is None:
            continue
        live.apply_message(seq, "p", 1, seq, msg)
        wire = msgpack.unpackb(codec.pack_message(msg), raw=False)  # as the journal holds it
        replayed.apply(seq, "p", 1, seq, wire, type(msg).STATE_KEY)
    assert live.documents() == replayed.documents()
    assert live.heartbeats == replayed.heartbeats
    assert list(live.pending_intents.items()) == list(replayed.pending_intents.items())
    restored = WriterState.load(msgpack.unpackb(msgpack.packb(live.dump(), use_bin_type=True), raw=False))
    assert restored.dump() == live.dump()
    for doc in live.documents().values():
        json.dumps(doc, allow_nan=False)


def test_live_apply_equals_replay_and_survives_a_snapshot() -> None:
    before = dict(DECODED)
    FAST(given(st.lists(any_message, min_size=1, max_size=6))(_state_property))()
    _valid_ones(None, before)


def test_heartbeats_kept_for_a_bounded_number_of_actors() -> None:
    from actors.state_writer.state import HEARTBEAT_ACTORS_MAX

    state = WriterState()
    total = HEARTBEAT_ACTORS_MAX * 3
    for seq in range(1, total + 1):
        raw = {"type": "heartbeat", "v": 2, "actor": f"actor-{seq}", "pid": 1, "interval_s": 1.0,
               "started_at": "2025-01-01T00:00:00Z"}
        state.apply_message(seq, "hb", 1, seq, codec.decode_message(raw))
        if seq % 7 == 0:  # an actor heard again stays
            state.apply_message(seq, "hb", 1, seq, codec.decode_message({**raw, "actor": "steady"}))
    assert len(state.heartbeats) == HEARTBEAT_ACTORS_MAX
    assert "steady" in state.heartbeats and f"actor-{total}" in state.heartbeats
    assert "actor-1" not in state.heartbeats
    restored = WriterState.load(msgpack.unpackb(msgpack.packb(state.dump()), raw=False))
    assert list(restored.heartbeats) == list(state.heartbeats)


def test_envelope_with_another_key_instead_of_msg_is_malformed() -> None:
    # Found by test_mutated_valid_frame: six keys, no 'msg' -> KeyError out of decode_header.
    frame = msgpack.packb({"src": "m", "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0, "lsg": {}})
    with pytest.raises(BusError) as err:
        codec.decode_envelope(frame)
    assert (err.value.code, err.value.field) == (ErrorCode.MALFORMED, "msg")
