"""Every kind of bad frame gets a NACK with a reason, is counted, and the writer keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import msgpack
import pytest

from bus.protocol import ErrorCode
from tests.harness import Instance
from tests.state_plane.helpers import RawClient, envelope
from tests.support.messages import position, positions
from tests.support.metrics import metric


@pytest.fixture
def raw(shared_hub: Instance) -> Iterator[RawClient]:
    client = RawClient(shared_hub)
    yield client
    client.close()


def _good(sseq: int = 1) -> dict:
    return positions(position()).to_wire()


def _nacks(inst: Instance, code: str, kind: str = "unknown", default: float | None = None) -> float:
    if default is None:  # after the message: the labelled counter must exist
        return metric(inst, "v7_writer_nacks_total", type=kind, code=code)
    return metric(inst, "v7_writer_nacks_total", default=default, type=kind, code=code)


BAD = {
    "garbage": (lambda: [b"\xc1\xff not msgpack at all"], ErrorCode.MALFORMED, None, "unknown"),
    "not_a_map": (lambda: [msgpack.packb([1, 2, 3])], ErrorCode.MALFORMED, None, "unknown"),
    "envelope_missing_src": (lambda: [msgpack.packb({"inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0, "msg": {}})],
                             ErrorCode.MALFORMED, "src", "unknown"),
    "oldest_above_sseq": (lambda: [envelope(_good(), sseq=3, oldest=4)], ErrorCode.MALFORMED, "oldest", "unknown"),
    "unknown_type": (lambda: [envelope({"type": "teleport", "v": 2})], ErrorCode.UNKNOWN_TYPE, "type", "unknown"),
    "bad_version": (lambda: [envelope({**_good(), "v": 99})], ErrorCode.UNSUPPORTED_VERSION, "v",
                    "positions_state"),
    "invalid_field": (lambda: [envelope({**_good(), "positions": [{**_good()["positions"][0], "qty": "lots"}]})],
                      ErrorCode.INVALID_FIELD, "positions.0.qty", "positions_state"),
    "nan": (lambda: [envelope({**_good(), "positions": [{**_good()["positions"][0], "mark_price": float("nan")}]})],
            ErrorCode.INVALID_FIELD, "positions.0.mark_price", "positions_state"),
    "unknown_field": (lambda: [envelope({**_good(), "surprise": 1})], ErrorCode.INVALID_FIELD, "surprise",
                      "positions_state"),
    "contract_breach": (lambda: [envelope({**_good(), "positions": [{**_good()["positions"][0], "entry_price": 0.0}]})],
                        ErrorCode.CONTRACT_BREACH, "positions.0", "positions_state"),
    "two_frames": (lambda: [envelope(_good()), b"extra"], ErrorCode.BAD_FRAMES, None, "unknown"),
    "empty_frame_set": (lambda: [b"", envelope(_good())], ErrorCode.BAD_FRAMES, None, "unknown"),
    "oversized": (lambda: [b"\x00" * ((1 << 20) + 1)], ErrorCode.FRAME_TOO_LARGE, None, "unknown"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_frame_is_nacked_with_reason_and_counted(shared_hub: Instance, raw: RawClient, case: str) -> None:
    make, code, field, kind = BAD[case]
    before = _nacks(shared_hub, code.value, kind, default=0.0)
    seq_before = _status_seq(shared_hub)
    reply = raw.ask(*make())
    assert reply[0] == "N", reply
    assert reply[2] == code.value
    assert reply[3] == field
    assert isinstance(reply[4], str) and reply[4]
    assert _nacks(shared_hub, code.value, kind) == before + 1
    # Nothing was applied, and the writer still serves a good message right after.
    assert _status_seq(shared_hub) == seq_before
    ok = raw.ask(envelope(_good(), stream=f"after-{case}", sseq=1))
    assert ok[0] == "A" and ok[2] == seq_before + 1


def test_nack_names_the_sseq_when_the_envelope_is_readable(raw: RawClient) -> None:
    reply = raw.ask(envelope({"type": "teleport", "v": 2}, stream="named", sseq=7))
    assert reply[:3] == ["N", 7, "unknown_type"]


def _status_seq(inst: Instance) -> int:
    from bus.subscriber import request_status

    return int(request_status(inst.settings)["seq"])
