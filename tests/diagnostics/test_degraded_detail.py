"""A degraded actor's own reason (its heartbeat's `detail`) reaches runtime_diagnostics, where the
dashboard's liveness card and operators read it: a gateway banned by the venue says so there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actors.diagnostics.processes import ProcessWatch
from bus.messages import Heartbeat
from tests.support.messages import heartbeat

NOW = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
BANNED = "venue IP ban: no new orders until it ends (HTTP 418)"


def _hb(status: str, detail: str = "") -> Heartbeat:
    return heartbeat("exchange", pid=4242, started_at=NOW - timedelta(minutes=5), ts=NOW - timedelta(seconds=1),
                     interval_s=2.0, loops=10, status=status, detail=detail)


def test_a_degraded_heartbeat_carries_its_reason_into_liveness() -> None:
    watch = ProcessWatch(missed_intervals=3, skew_tolerance_s=5.0)
    watch.observe(_hb("degraded", BANNED))
    row = watch.evaluate(NOW)["exchange"]
    # Degraded is not stale: the process is alive and says what is wrong.
    assert (row.stale, row.status, row.detail, row.reason) == (False, "degraded", BANNED, "")
    watch.observe(_hb("running"))
    assert watch.evaluate(NOW)["exchange"].detail == ""


def test_the_reason_survives_a_diagnostics_restart_through_the_hub_snapshot() -> None:
    watch = ProcessWatch(missed_intervals=3, skew_tolerance_s=5.0)
    watch.restore({"exchange": {**_hb("degraded", BANNED).model_dump(mode="json"), "seq": 17}})
    assert watch.evaluate(NOW)["exchange"].detail == BANNED
