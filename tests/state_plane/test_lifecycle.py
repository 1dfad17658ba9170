"""Process lifecycle of the state writer: the directory lock, SIGTERM, restart."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from bus.sender import Sender
from bus.subscriber import request_status
from tests.harness import V7, Instance
from tests.support.messages import position, positions, sample_ledger


def test_second_writer_is_refused_naming_the_holder(hub: Instance) -> None:
    holder = hub.procs["state_writer"].pid
    started = time.monotonic()
    second = subprocess.run([V7, "run", "state_writer"], env=hub.env, capture_output=True, text=True, timeout=30,
                            check=False)
    assert second.returncode == 3
    assert f"pid {holder}" in second.stderr
    assert str(hub.state_dir) in second.stderr
    assert time.monotonic() - started < 15  # refused at once, not after a bind timeout
    # The first writer is untouched and still serving.
    with Sender(hub.settings, "executor") as sender:
        assert sender.send_and_wait(positions(position()), timeout=10) >= 1
    assert hub.procs["state_writer"].poll() is None


def test_sigterm_drains_writes_files_snapshots_and_releases_the_lock(hub: Instance) -> None:
    sender = Sender(hub.settings, "executor")
    futures = [sender.submit(positions(position(realized=float(i)))) for i in range(200)]
    futures.append(sender.submit(sample_ledger(2)))
    last = max(f.result(timeout=20) for f in futures)
    sender.close()
    proc = hub.procs["state_writer"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    log = hub.logs("state_writer")
    assert f"stopped at seq {last}" in log
    # Files hold the last committed documents; a snapshot covers the final seq.
    state = json.loads((hub.state_dir / "positions_state.json").read_text())
    assert state["positions"][0]["realized_pnl"] == 199.0
    assert json.loads((hub.state_dir / "positions_ledger.json").read_text())["metadata"]["entry_count"] == 2
    snaps = sorted(hub.settings.journal_path.glob("snapshot-*.msgpack"))
    assert snaps and snaps[-1].name == f"snapshot-{last:020d}.msgpack"
    assert (hub.state_dir / ".writer.lock").read_text() == ""
    assert not list(hub.state_dir.glob(".*.tmp.*"))
    # The lock is free: a new writer starts at once, replays nothing, and the seq continues.
    hub.start_writer()
    assert request_status(hub.settings)["seq"] == last
    assert "replayed 0" in hub.logs("state_writer")
    with Sender(hub.settings, "executor") as sender:
        assert sender.send_and_wait(positions(position()), timeout=10) == last + 1
