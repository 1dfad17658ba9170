"""State-file writes under bursts, and the writer's behaviour when its disk refuses writes."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest

from bus.sender import Sender
from bus.subscriber import request_status
from tests.harness import instance
from tests.support.messages import position, positions
from tests.support.metrics import metric


def test_file_writes_are_bounded_by_ticks_not_messages(tmp_path: Path) -> None:
    with instance(tmp_path, "[writer]\ntick_ms = 200\n") as inst:
        inst.start_writer()
        with Sender(inst.settings, "executor") as sender:
            sender.send_and_wait(positions(position()), timeout=10)
            inst.wait_for(lambda: metric(inst, "v7_writer_file_write_seconds_count", default=0.0,
                                          file="positions_state") >= 1,
                          10, "the first write")
            writes_before = metric(inst, "v7_writer_file_write_seconds_count", file="positions_state")
            started = time.monotonic()
            futures = [sender.submit(positions(position(realized=float(i)))) for i in range(3000)]
            for f in futures:
                f.result(timeout=60)
            elapsed = time.monotonic() - started
        path = inst.state_dir / "positions_state.json"
        inst.wait_for(lambda: json.loads(path.read_text())["positions"][0]["realized_pnl"] == 2999.0, 10,
                      "the last document on disk")
        writes = metric(inst, "v7_writer_file_write_seconds_count", file="positions_state") - writes_before
        ticks = (time.monotonic() - started) / 0.2
        assert writes <= ticks + 2, (writes, ticks, elapsed)
        assert writes < 3000 / 10
        assert metric(inst, "v7_writer_messages_total", type="positions_state") == 3001


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs prlimit to make the disk refuse writes")
def test_unwritable_journal_stops_acks_says_why_and_resumes_by_itself(tmp_path: Path) -> None:
    with instance(tmp_path, "[bus]\nheartbeat_s = 0.2\n") as inst:
        proc = inst.start_writer()
        with Sender(inst.settings, "executor", resend_after_s=0.3) as sender:
            futures = [sender.submit(positions(position(realized=float(i)))) for i in range(50)]
            seq = max(f.result(timeout=10) for f in futures)
            segment = max(inst.settings.journal_path.glob("*.wal"))
            # From now on the writer process may not grow any file: its next journal append fails (EFBIG).
            limit = segment.stat().st_size
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            try:
                with pytest.raises(TimeoutError):
                    sender.send_and_wait(positions(position(realized=1000.0)), timeout=2)  # no ACK: not durable
                assert metric(inst, "v7_writer_degraded") == 1
                assert metric(inst, "v7_writer_journal_errors_total", reason="EFBIG") >= 1
                status = request_status(inst.settings)
                assert status["degraded"] == "EFBIG" and status["seq"] == seq
                assert "journal append failed (EFBIG" in inst.logs("state_writer")
                assert segment.stat().st_size == limit  # the failed batch left nothing behind
                assert proc.poll() is None
            finally:
                resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            # Nobody restarts anything: the resent message is committed once the disk takes writes again.
            assert sender.flush(20)
            assert request_status(inst.settings)["seq"] == seq + 1
            assert metric(inst, "v7_writer_degraded") == 0
            assert "resuming ACKs" in inst.logs("state_writer")
            path = inst.state_dir / "positions_state.json"
            inst.wait_for(lambda: json.loads(path.read_text())["positions"][0]["realized_pnl"] == 1000.0, 10,
                          "the file after recovery")
