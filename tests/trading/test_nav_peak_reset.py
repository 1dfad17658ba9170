"""`v7 nav reset-peak`: the operator moves peak NAV through the hub; a sync that was down
when the reset was committed still applies it (the hub keeps the newest reset)."""

from __future__ import annotations

from typing import Any

from bus.subscriber import SnapshotError, request_snapshot
from tests.harness import Instance


def _nav_state(inst: Instance) -> dict[str, Any] | None:
    try:
        return request_snapshot(inst.settings, ["nav_state"], timeout_s=2).state["nav_state"]
    except SnapshotError:
        return None


def test_peak_reset_is_applied_audited_and_survives_a_sync_restart(v7: Instance) -> None:
    v7.start_writer()
    v7.start("exchange")
    v7.start("sync")
    v7.wait_for(lambda: _nav_state(v7) is not None, 60, "a first NAV sample")
    nav = _nav_state(v7)["nav_total"]

    done = v7.run_cli("nav", "reset-peak", "--peak", "20000", "--reason", "test: pretend peak", "--operator", "ops")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "committed as seq" in done.stdout

    def reset_to(peak: float) -> bool:
        doc = _nav_state(v7)
        return bool(doc and doc.get("peak_reset") and doc["peak_nav"] == peak)

    v7.wait_for(lambda: reset_to(20000.0), 30, "sync to apply the reset")
    doc = _nav_state(v7)
    assert doc["peak_reset"]["reason"] == "test: pretend peak" and doc["peak_reset"]["operator"] == "ops"
    assert doc["dd_state"] == "DEFENSIVE" and abs(doc["dd_pct"] - (1 - doc["nav_total"] / 20000.0)) < 1e-6
    first_seq = doc["peak_reset"]["seq"]

    # Sync is down when the next reset is committed; the hub's copy brings it back on restart.
    v7.kill("sync")
    done = v7.run_cli("nav", "reset-peak", "--reason", "deposit reviewed")
    assert done.returncode == 0, done.stdout + done.stderr
    v7.start("sync", name="sync-2")

    def reset_to_reading() -> bool:
        doc = _nav_state(v7)
        return bool(doc and doc.get("peak_reset") and doc["peak_reset"]["reason"] == "deposit reviewed")

    v7.wait_for(reset_to_reading, 60, "the restarted sync to apply the reset it missed")
    doc = _nav_state(v7)
    assert doc["peak_reset"]["seq"] > first_seq
    assert abs(doc["peak_reset"]["peak_nav"] - nav) < nav * 0.01  # the next reading (no trading here)
    assert doc["dd_state"] == "NORMAL"


def test_reset_needs_a_reason(v7: Instance) -> None:
    result = v7.run_cli("nav", "reset-peak", "--reason", "")
    assert result.returncode == 2
    assert "reason" in result.stderr
