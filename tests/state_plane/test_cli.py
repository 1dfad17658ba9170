"""`v7 validate`, `v7 tail`, `v7 status` against a real writer's files and stream."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from bus.sender import Sender
from tests.harness import REPO, V7, Instance
from tests.support.messages import kpis, position, positions, sample_ledger


def _populate(inst: Instance) -> int:
    with Sender(inst.settings, "executor") as sender:
        for msg in (positions(position(), position("ETHUSDT", 0.0, 0.0, 0.0)), sample_ledger(2), kpis()):
            seq = sender.send_and_wait(msg, timeout=10)
    for name in ("positions_state", "positions_ledger", "kpis_v7"):
        inst.wait_for((inst.state_dir / f"{name}.json").exists, 10, name)
    return seq


def test_validate_ok_prints_a_summary(shared_hub: Instance) -> None:
    _populate(shared_hub)
    result = shared_hub.run_cli("validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   positions_state.json: updated_at=" in result.stdout
    assert "positions=2" in result.stdout and "entries=2" in result.stdout
    assert f"3/8 state files present and valid in {shared_hub.state_dir}" in result.stdout
    # Missing files are only a violation when every file is required.
    assert shared_hub.run_cli("validate", "--require-all").returncode == 1


def test_validate_names_file_and_field(shared_hub: Instance, tmp_path: Path) -> None:
    _populate(shared_hub)
    copy = tmp_path / "state"
    shutil.copytree(shared_hub.state_dir, copy, ignore=shutil.ignore_patterns(".*"))
    doc = json.loads((copy / "positions_state.json").read_text())
    doc["positions"][0]["mark_price"] = 0.0  # a live row zeroed: the seed's original bug
    (copy / "positions_state.json").write_text(json.dumps(doc))
    (copy / "kpis_v7.json").write_text('{"updated_at": "2025-01-01T00:00:00Z", "portfol')
    result = shared_hub.run_cli("validate", str(copy))
    assert result.returncode == 1
    assert "FAIL positions_state.json: field positions.0:" in result.stdout
    assert "mark_price > 0" in result.stdout
    assert "FAIL kpis_v7.json: not valid JSON" in result.stdout
    assert "ok   positions_ledger.json" in result.stdout
    assert "2 violation(s)" in result.stdout


def test_tail_prints_one_line_per_update_with_seq(shared_hub: Instance) -> None:
    proc = subprocess.Popen([V7, "tail", "--count", "3", "positions_state", "positions_ledger"], env=shared_hub.env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        synced = proc.stderr.readline() if proc.stderr else ""
        assert synced.startswith("# synced at seq"), synced
        with Sender(shared_hub.settings, "executor") as sender:
            seqs = [sender.send_and_wait(msg, timeout=10) for msg in (positions(position()), kpis(), sample_ledger(1),
                                                                       positions(position(realized=5.0)))]
        out, _err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = out.splitlines()
    assert proc.returncode == 0
    assert len(lines) == 3  # the kpi snapshot was filtered out by topic
    assert [int(line.split()[0]) for line in lines] == [seqs[0], seqs[2], seqs[3]]
    assert lines[0].split()[1] == "positions_state" and lines[1].split()[1] == "positions_ledger"
    assert "executor#" in lines[0] and '"realized_pnl":5.0' in lines[2]


def test_status_reports_the_hub(shared_hub: Instance) -> None:
    seq = _populate(shared_hub)
    result = shared_hub.run_cli("status")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["seq"] >= seq and status["degraded"] is None
    assert status["pid"] == shared_hub.procs["state_writer"].pid
