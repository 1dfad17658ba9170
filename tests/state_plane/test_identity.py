"""(src, inc, sseq) identity: resends never apply twice; newer never overtakes older."""

from __future__ import annotations

import json
import signal
import time

import zmq

from bus.protocol import HUB_TOPIC
from bus.subscriber import request_status
from tests.harness import Instance
from tests.state_plane.helpers import RawClient, envelope
from tests.support.messages import position, positions


def _seq(inst: Instance) -> int:
    return int(request_status(inst.settings)["seq"])


def _updates(inst: Instance) -> zmq.Socket:
    """A SUB on positions_state that is known to be subscribed: the hub heartbeats when a
    subscription arrives, so the first $hub frame proves the hub has it (no sleep to guess)."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, HUB_TOPIC)
    sub.setsockopt(zmq.SUBSCRIBE, b"positions_state")
    sub.connect(inst.settings.updates_endpoint)
    assert sub.poll(10_000), "no hub heartbeat after subscribing"
    assert sub.recv_multipart()[0] == HUB_TOPIC
    sub.setsockopt(zmq.UNSUBSCRIBE, HUB_TOPIC)
    return sub


def _drain(sub: zmq.Socket, wait_s: float) -> list[int]:
    seqs = []
    while sub.poll(int(wait_s * 1000)):
        topic, seq, *_ = sub.recv_multipart()
        if topic != HUB_TOPIC:  # a heartbeat queued before the unsubscribe took effect
            seqs.append(int.from_bytes(seq, "big"))
        wait_s = 0.3
    return seqs


def test_resend_of_an_acked_message_changes_nothing(hub: Instance) -> None:
    raw = RawClient(hub)
    sub = _updates(hub)
    frame = envelope(positions(position(realized=7.0)).to_wire(), stream="resender", inc=42, sseq=1)
    try:
        first = raw.ask(frame)
        assert first[0] == "A"
        seq = first[2]
        path = hub.state_dir / "positions_state.json"
        hub.wait_for(path.exists, 10, "positions_state.json")
        hub.wait_for(lambda: json.loads(path.read_text())["positions"][0]["realized_pnl"] == 7.0, 10, "file")
        content, mtime = path.read_bytes(), path.stat().st_mtime_ns
        assert _drain(sub, 5) == [seq]
        for _ in range(3):
            assert raw.ask(frame) == ["D", 1, seq]
        time.sleep(0.5)  # several ticks: a re-applied message would rewrite the file
        assert _seq(hub) == seq
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime
        assert _drain(sub, 0.5) == []  # never republished

        # De-duplication survives a restart (snapshot + journal carry the stream table).
        hub.kill("state_writer", signal.SIGKILL)
        hub.start_writer()
        raw.close()
        raw = RawClient(hub)
        assert raw.ask(frame) == ["D", 1, seq]
        assert _seq(hub) == seq
    finally:
        raw.close()
        sub.close(0)


def test_newer_never_overtakes_an_unanswered_older(hub: Instance) -> None:
    """sseq 2 arriving before sseq 1 is not committed; once 1 arrives both are, in order."""
    raw = RawClient(hub)
    msg = positions(position()).to_wire()
    try:
        assert raw.ask(envelope(msg, stream="order", sseq=2, oldest=1)) == ["O", 2, 1]
        assert _seq(hub) == 0
        a1 = raw.ask(envelope(msg, stream="order", sseq=1, oldest=1))
        a2 = raw.ask(envelope(msg, stream="order", sseq=2, oldest=1))
        assert (a1[0], a2[0]) == ("A", "A") and a2[2] == a1[2] + 1
        # A sender that promises never to resend below 5 (oldest == sseq) may skip ahead ...
        assert raw.ask(envelope(msg, stream="order", sseq=5, oldest=5))[0] == "A"
        # ... and everything at or below the highest committed is a duplicate.
        assert raw.ask(envelope(msg, stream="order", sseq=4, oldest=4)) == ["D", 4, 0]
        # A NACKed sseq counts as answered: the next one is in order.
        assert raw.ask(envelope({"type": "nope", "v": 2}, stream="order", sseq=6, oldest=6))[0] == "N"
        assert raw.ask(envelope(msg, stream="order", sseq=7, oldest=6))[0] == "A"
        # A new incarnation of the same source is a new stream.
        assert raw.ask(envelope(msg, stream="order-2", sseq=1))[0] == "A"
    finally:
        raw.close()


def test_out_of_order_and_duplicates_inside_one_batch(hub: Instance) -> None:
    """Frames sent back to back land in one group commit; the rules hold inside it too."""
    raw = RawClient(hub)
    msg = positions(position()).to_wire()
    try:
        frames = [envelope(msg, stream="batch", sseq=s, oldest=1) for s in (1, 2, 2, 4, 3)]
        for frame in frames:
            raw.send(frame)
        replies = raw.replies(5)
        by = {(r[0], r[1]) for r in replies}
        assert ("A", 1) in by and ("A", 2) in by and ("D", 2) in by and ("A", 3) in by
        assert ("O", 4) in by  # 4 came before 3 was answered
        dup = next(r for r in replies if r[0] == "D")
        ack2 = next(r for r in replies if r[:2] == ["A", 2])
        assert dup[2] == ack2[2]  # a duplicate inside the batch names the seq of its original
    finally:
        raw.close()
