"""Clone pattern end to end: late join, hub restart, silent hub."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Future

import pytest

from bus import codec
from bus.protocol import pack_seq
from bus.sender import Sender
from bus.subscriber import Subscriber, Update, ViewChanged
from tests.harness import Instance, instance
from tests.support.messages import position, positions

FAST_HEARTBEAT = "[bus]\nheartbeat_s = 0.2\n"


def _stream(sender: Sender, count: int, started: threading.Event, pace_s: float) -> dict[int, float]:
    """Send `count` positions messages (realized_pnl = i), pipelined; returns seq -> value."""
    futures: list[tuple[float, Future[int]]] = []
    for i in range(count):
        futures.append((float(i), sender.submit(positions(position(realized=float(i))))))
        if i == count // 3:
            started.set()
        threading.Event().wait(pace_s)
    return {f.result(timeout=30): value for value, f in futures}


def test_late_subscriber_gets_snapshot_then_every_update_once(hub: Instance) -> None:
    sender = Sender(hub.settings, "executor")
    started = threading.Event()
    result: dict[str, dict[int, float]] = {}
    thread = threading.Thread(target=lambda: result.setdefault("acks", _stream(sender, 900, started, 0.002)))
    thread.start()
    sub = Subscriber(hub.settings, keys=["positions_state"])
    got: list[Update] = []
    try:
        assert started.wait(30)
        assert sub.wait_synced(20)
        snap_seq = sub.snapshot_seq
        assert snap_seq > 0, "joined before anything was committed: not a late join"
        snap_doc = sub.snapshot_state["positions_state"]
        thread.join(60)
        acks = result["acks"]
        last = max(acks)
        deadline = time.monotonic() + 30
        while sub.seq < last:
            assert time.monotonic() < deadline, f"subscriber stuck at {sub.seq} of {last}"
            got.extend(sub.poll(0.2))
            assert sub.snapshots == 1, "re-snapshotted: the stream had a gap"
        seqs = [u.seq for u in got]
        assert seqs == list(range(snap_seq + 1, last + 1))  # no gap, no duplicate
        assert sub.gaps == 0
        # The snapshot is the document as of snap_seq; every update is the message ACKed at its seq.
        assert snap_doc["positions"][0]["realized_pnl"] == acks[snap_seq]
        for update in got:
            assert update.msg.positions[0].realized_pnl == acks[update.seq]
        assert sub.documents["positions_state"]["positions"][0]["realized_pnl"] == acks[last]
    finally:
        sub.close()
        sender.close()


def test_subscriber_resyncs_after_hub_restart(tmp_path) -> None:
    with instance(tmp_path, FAST_HEARTBEAT) as inst:
        inst.start_writer()
        sender = Sender(inst.settings, "executor")
        sub = Subscriber(inst.settings)
        try:
            sender.send_and_wait(positions(position(realized=1.0)), timeout=10)
            assert sub.wait_synced(10)
            epoch = sub.epoch
            inst.kill("state_writer", signal.SIGKILL)
            inst.start_writer()
            seq = sender.send_and_wait(positions(position(realized=2.0)), timeout=20)

            def caught_up() -> bool:
                sub.poll(0.1)
                return sub.seq >= seq and sub.epoch != epoch

            inst.wait_for(caught_up, 20, "the subscriber to follow the restarted hub")
            assert sub.documents["positions_state"]["positions"][0]["realized_pnl"] == 2.0
            assert sub.snapshots >= 2
        finally:
            sub.close()
            sender.close()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_silent_hub_is_noticed_and_rejoined(tmp_path) -> None:
    with instance(tmp_path, FAST_HEARTBEAT) as inst:
        inst.start_writer()
        sub = Subscriber(inst.settings)
        pid = inst.procs["state_writer"].pid
        try:
            assert sub.wait_synced(10)
            assert sub.hub_alive
            os.kill(pid, signal.SIGSTOP)
            inst.wait_for(lambda: (sub.poll(0.1), not sub.hub_alive)[1], 10, "the hub to be noticed silent")
            assert sub.reconnects == 1
        finally:
            os.kill(pid, signal.SIGCONT)
        try:
            inst.wait_for(lambda: (sub.poll(0.1), sub.hub_alive)[1], 10, "the subscriber to rejoin")
            assert sub.snapshots >= 2
        finally:
            sub.close()


def _view_frame(key: str, seq: int, value: object) -> list[bytes]:
    return [b"$view:" + key.encode(), pack_seq(seq), codec.pack({"key": key, "value": value})]


def _hub_frame(seq: int, epoch: int, views: dict[str, int]) -> list[bytes]:
    return [b"$hub", pack_seq(seq), codec.pack({"ts": 0.0, "seq": seq, "pid": 1, "epoch": epoch,
                                                "degraded": None, "views": views})]


def test_view_frames_follow_the_seq_rule(tmp_path) -> None:
    """Older than our state: stale, dropped. At our seq: applied. Newer: updates were missed (resync)."""
    with instance(tmp_path) as inst:
        sub = Subscriber(inst.settings, keys=["open_positions"])
        sub.seq = sub.snapshot_seq = 10
        sub.epoch = 7
        sub.views = {"open_positions": ["as of 10"]}
        sub._view_seq = {"open_positions": 10}
        out: list = []
        assert sub._on_frames(_view_frame("open_positions", 9, ["older"]), out)
        assert sub.view("open_positions") == ["as of 10"] and out == []
        assert sub._on_frames(_view_frame("open_positions", 10, ["at 10"]), out)
        assert sub.view("open_positions") == ["at 10"] and out == [ViewChanged("open_positions", 10, ["at 10"])]
        assert sub._on_frames(_view_frame("pnl_today", 10, {"day": "x"}), out), "not asked for: ignored"
        assert sub.view("pnl_today") is None and len(out) == 1
        assert not sub._on_frames(_view_frame("open_positions", 11, ["ahead"]), out), "missed updates: resync"
        assert sub.view("open_positions") == ["at 10"]
        # A heartbeat at our seq naming a newer frame of a view we keep: that frame was lost.
        assert sub._on_frames(_hub_frame(10, 7, {"open_positions": 10, "pnl_today": 10}), out)
        sub._view_seq["open_positions"] = 8
        assert not sub._on_frames(_hub_frame(10, 7, {"open_positions": 10}), out)
