"""The hub keeps a bounded NAV curve (snapshot key nav_history), rebuilt exactly after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bus.messages import NavState
from bus.sender import Sender
from bus.subscriber import request_snapshot
from tests import SIM_SCOPE
from tests.harness import Instance

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _sample(i: int, nav: float) -> NavState:
    # Samples 2 s apart: the hub keeps one point per 5-second bucket (the newest in it).
    return NavState(scope=SIM_SCOPE,
        updated_at=T0 + timedelta(seconds=2 * i), nav_total=nav, aum=nav, peak_nav=10_000.0,
                     dd_pct=max(0.0, (10_000.0 - nav) / 10_000.0), dd_state="NORMAL")


def test_nav_history_is_bucketed_and_survives_a_writer_kill(v7: Instance) -> None:
    v7.start_writer()
    sender = Sender(v7.settings, "sync")
    try:
        for i in range(10):
            sender.send_and_wait(_sample(i, 10_000.0 - i), timeout=20)
    finally:
        sender.close()
    history = request_snapshot(v7.settings, ["nav_history"]).state["nav_history"]
    # t = 0,2,4 | 6,8 | 10,12,14 | 16,18  -> buckets 0..3, newest sample in each
    assert [p["t"] - T0.timestamp() for p in history] == [4.0, 8.0, 14.0, 18.0]
    assert [p["nav"] for p in history] == [9998.0, 9996.0, 9993.0, 9991.0]
    assert history[-1]["peak"] == 10_000.0 and history[-1]["dd_pct"] == 9 / 10_000.0

    v7.kill("state_writer")
    v7.start_writer()
    assert request_snapshot(v7.settings, ["nav_history"]).state["nav_history"] == history
