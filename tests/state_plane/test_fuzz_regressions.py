"""The independent fuzzer's findings, one test each: none of them may stop the hub or poison state.

Each case is sent to a real state writer by the raw client (the bytes a client in another
language could send). After each one the hub must have answered it, counted it, kept its
pid, and still commit the next good message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import msgpack
import pytest
import zmq

from bus.codec import MAX_DEPTH
from bus.protocol import unpack_seq
from bus.subscriber import request_snapshot, request_status
from tests.harness import Instance
from tests.state_plane.helpers import RawClient, envelope
from tests.support.metrics import metric

# The fuzzer's minimal reproducer (1 068 bytes): a heartbeat whose `v` is 1000 nested arrays.
# It raised RecursionError in the hub (exit 1), and a conforming sender resends it forever.
NESTED_V = (b"\x86\xa3src\xa8fuzz-min\xa3inc\x01\xa4sseq\x01\xa6oldest\x01\xa2ts\xcb?\xf0\x00\x00\x00\x00\x00\x00"
            b"\xa3msg\x82\xa4type\xa9heartbeat\xa1v" + b"\x91" * 1000 + b"\xc0")


@pytest.fixture
def raw(shared_hub: Instance) -> Iterator[RawClient]:
    client = RawClient(shared_hub)
    yield client
    client.close()


def _heartbeat(**over: object) -> dict:
    body = {"type": "heartbeat", "v": 2, "ts": "2025-01-01T00:00:00Z", "actor": "executor", "pid": 7,
            "started_at": "2025-01-01T00:00:00Z", "interval_s": 2.0}
    body.update(over)
    return body


def _fill(trade_id: str, qty: float, **over: object) -> dict:
    body = {"type": "order_filled", "v": 2, "ts": "2025-01-01T00:00:00Z", "trade_id": trade_id,
            "order_id": "o-" + trade_id, "intent_id": "i-" + trade_id, "mode": "SIM", "account": "fuzz",
            "symbol": "FUZZUSDT", "side": "BUY", "qty": qty, "price": 1.0, "liquidity": "taker"}
    body.update(over)
    return body


def _still_serving(inst: Instance, raw: RawClient, pid: int, src: str) -> None:
    status = request_status(inst.settings)
    assert status["pid"] == pid, "the hub restarted"
    ok = raw.ask(envelope(_heartbeat(), stream=src, sseq=1))
    assert ok[0] == "A", ok


def test_deeply_nested_version_is_nacked_not_a_crash(shared_hub: Instance, raw: RawClient) -> None:
    pid = request_status(shared_hub.settings)["pid"]
    before = metric(shared_hub, "v7_writer_nacks_total", default=0.0, type="unknown", code="malformed")
    assert len(NESTED_V) == 1068
    reply = raw.ask(NESTED_V)
    assert reply[:3] == ["N", 1, "malformed"], reply
    assert reply[3].startswith("msg.v"), reply
    assert str(MAX_DEPTH) in reply[4]
    assert metric(shared_hub, "v7_writer_nacks_total", type="unknown", code="malformed") == before + 1
    # The resend a conforming sender makes is answered the same way, and the hub stays up.
    assert raw.ask(NESTED_V)[:3] == ["N", 1, "malformed"]
    _still_serving(shared_hub, raw, pid, "after-nested")


def test_nesting_past_msgpacks_own_stack_is_nacked(shared_hub: Instance, raw: RawClient) -> None:
    frame = NESTED_V.replace(b"\x91" * 1000 + b"\xc0", b"\x91" * 5000 + b"\xc0")
    reply = raw.ask(frame)
    assert reply[0] == "N" and reply[2] == "malformed", reply


def test_nested_snapshot_op_is_answered_with_its_req(shared_hub: Instance) -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(shared_hub.settings.snapshot_endpoint)
    try:
        op: object = "snapshot"
        for _ in range(1000):
            op = [op]
        sock.send(msgpack.packb({"op": op, "req": 41}))
        assert sock.poll(10_000), "no answer to a nested snapshot request"
        answer = msgpack.unpackb(sock.recv(), raw=False)
        # Refused before anything recursive touches it: `malformed`, never `internal`.
        assert answer["error"] == "malformed", answer
        sock.send(msgpack.packb({"op": "snapshot", "req": 42, "keys": []}))
        assert sock.poll(10_000)
        assert msgpack.unpackb(sock.recv(), raw=False)["req"] == 42
    finally:
        sock.close(0)


def test_fills_that_would_overflow_a_position_are_refused_and_views_keep_working(
        shared_hub: Instance, raw: RawClient) -> None:
    # Each fill is within the 10^15 bound; their sum is not. The first commits, the second is
    # refused at ingest, and every view that includes open_positions still builds.
    assert raw.ask(envelope(_fill("big-1", 6e14), stream="fuzz-fills", sseq=1))[0] == "A"
    reply = raw.ask(envelope(_fill("big-2", 6e14), stream="fuzz-fills", sseq=2))
    assert reply[:4] == ["N", 2, "bound_exceeded", "qty"], reply
    # Within one batch too: two fills sent back to back are judged against each other.
    raw.send(envelope(_fill("big-3", 3e14), stream="fuzz-fills", sseq=3))
    raw.send(envelope(_fill("big-4", 3e14), stream="fuzz-fills", sseq=4))
    answers = {r[1]: r for r in raw.replies(2)}
    assert answers[3][0] == "A"
    assert answers[4][:3] == ["N", 4, "bound_exceeded"], answers
    # Reducing is always allowed.
    assert raw.ask(envelope(_fill("big-5", 6e14, side="SELL"), stream="fuzz-fills", sseq=5))[0] == "A"
    state = request_snapshot(shared_hub.settings, keys=["open_positions", "pnl_today"]).state
    rows = [p for p in state["open_positions"] if p["account"] == "fuzz"]
    assert [r["qty"] for r in rows] == [pytest.approx(3e14)]
    assert state["pnl_today"] is not None


WRONG_TYPES = {
    "bool_for_int": (_heartbeat(pid=True), "pid"),
    "float_for_int": (_heartbeat(pid=5.0), "pid"),
    "bool_for_number": (_heartbeat(interval_s=True), "interval_s"),
    "str_for_number": (_heartbeat(interval_s="2"), "interval_s"),
    "bin_for_str": (_heartbeat(actor=b"executor"), "actor"),
    "int_for_bool": (_fill("typed-1", 1.0, reduce_only=1), "reduce_only"),
    "bool_for_time": (_heartbeat(started_at=True), "started_at"),
    "huge_interval": (_heartbeat(interval_s=1e308), "interval_s"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_wrong_msgpack_types_are_refused(shared_hub: Instance, raw: RawClient, case: str) -> None:
    body, field = WRONG_TYPES[case]
    reply = raw.ask(envelope(body, stream=f"typed-{case}", sseq=1))
    assert reply[0] == "N" and reply[2] == "invalid_field" and reply[3] == field, reply


def test_binary_map_keys_and_duplicate_keys_are_refused(raw: RawClient) -> None:
    bin_key = msgpack.packb({"src": "dupkeys", "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0,
                             "msg": {**_heartbeat(), b"actor": "x"}}, use_bin_type=True)
    assert raw.ask(bin_key)[:3] == ["N", 1, "invalid_field"]
    # Two `sseq` keys: msgpack would keep the last one; the hub refuses the map.
    dup = (b"\x87\xa3src\xa7dupkeys\xa3inc\x01\xa4sseq\x01\xa4sseq\x02\xa6oldest\x01\xa2ts\xcb?\xf0\x00\x00\x00\x00"
           b"\x00\x00\xa3msg" + msgpack.packb(_heartbeat()))
    reply = raw.ask(dup)
    assert reply[0] == "N" and reply[2] == "malformed" and reply[3] == "'sseq'", reply


def test_extra_envelope_key_is_named(raw: RawClient) -> None:
    frame = msgpack.packb({"src": "extra", "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0, "msg": _heartbeat(),
                           "zz": 1})
    reply = raw.ask(frame)
    assert reply[:4] == ["N", 1, "malformed", "zz"], reply


def test_the_hub_publishes_the_normalized_form(shared_hub: Instance, raw: RawClient) -> None:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(shared_hub.settings.updates_endpoint)
    try:
        assert sub.poll(10_000), "no heartbeat on subscription"
        sub.recv_multipart()
        # An offset time and integer milliseconds: journaled and published in UTC "...Z".
        body = _heartbeat(ts=1735689600000, started_at="2025-01-01T02:00:00+02:00", interval_s=2)
        reply = raw.ask(envelope(body, stream="normalized", sseq=1))
        assert reply[0] == "A", reply
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert sub.poll(10_000)
            topic, seq, frame = sub.recv_multipart()
            if topic == b"heartbeat" and unpack_seq(seq) == reply[2]:
                break
        else:
            raise AssertionError("the committed heartbeat was not published")
        msg = msgpack.unpackb(frame, raw=False)["msg"]
        assert msg["started_at"] == "2025-01-01T00:00:00Z"
        assert msg["ts"] == datetime(2025, 1, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z")
        assert type(msg["interval_s"]) is float
        assert msg["loops"] == 0 and msg["status"] == "running"  # defaults filled in
    finally:
        sub.close(0)
