"""The codec: any bytes give an Envelope or one clear BusError, never a crash or a hang."""

from __future__ import annotations

import time

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus import codec
from bus.codec import BusError
from bus.messages import MESSAGE_TYPES
from bus.protocol import ErrorCode
from tests.support.messages import kpis, position, positions, sample_ledger

_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.floats() | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_any_bytes_decode_or_raise_bus_error(frame: bytes) -> None:
    try:
        env = codec.decode_envelope(frame)
    except BusError as err:
        assert isinstance(err.code, ErrorCode)
        return
    assert env.sseq >= env.oldest >= 1


@settings(max_examples=300, deadline=None)
@given(_msgpack_values, st.sampled_from([cls.TYPE for cls in MESSAGE_TYPES] + ["nope"]))
def test_any_msgpack_value_as_message_decodes_or_raises_bus_error(value, type_tag: str) -> None:
    msg = {"type": type_tag, "v": 2, "x": value}
    if isinstance(value, dict):
        msg = {**value, "type": type_tag, "v": 2}
    frame = msgpack.packb({"src": "h", "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0, "msg": msg})
    try:
        codec.decode_envelope(frame)
    except BusError as err:
        assert err.code in (ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TYPE, ErrorCode.INVALID_FIELD,
                            ErrorCode.CONTRACT_BREACH)


@pytest.mark.parametrize("msg", [positions(position(), position("ETHUSDT", 0.0, 0.0, 0.0)), sample_ledger(3), kpis()],
                         ids=["positions", "ledger", "kpis"])
def test_round_trip(msg) -> None:
    frame = codec.encode_envelope("me", 7, 3, msg, ts=1.5, oldest=2)
    env = codec.decode_envelope(frame)
    assert (env.src, env.inc, env.sseq, env.oldest, env.ts) == ("me", 7, 3, 2, 1.5)
    assert env.msg == msg
    assert msgpack.unpackb(frame)["msg"] == msg.to_wire()


@pytest.mark.parametrize("depth", [400, 100_000])
def test_deep_nesting_is_refused_quickly(depth: int) -> None:
    # Hand-built: msgpack's own packer refuses to nest this deep, a hostile client need not.
    nested = b"\x91" * depth + b"\x01"  # [[[...1...]]]
    head = msgpack.packb({"src": "h", "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0})
    body = msgpack.packb({"type": "positions_state", "v": 2})
    frame = b"\x86" + head[1:] + msgpack.packb("msg") + b"\x83" + body[1:] + msgpack.packb("positions") + nested
    started = time.monotonic()
    with pytest.raises(BusError):
        codec.decode_envelope(frame)
    assert time.monotonic() - started < 5


def test_msgpack_extension_types_are_refused() -> None:
    frame = msgpack.packb({"src": "h", "inc": 1, "sseq": 1, "oldest": 1, "ts": msgpack.Timestamp(1, 0),
                           "msg": {"type": "heartbeat", "v": 2}}, datetime=False)
    with pytest.raises(BusError) as err:
        codec.decode_envelope(frame)
    assert err.value.field == "ts"
