"""A (re)started dashboard seeds its NAV chart from the hub's nav_history."""

from __future__ import annotations

from datetime import UTC, datetime

from actors.dashboard.facade import DashboardFacade


def test_snapshot_history_seeds_the_chart_and_bad_points_are_skipped() -> None:
    facade = DashboardFacade(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    history = [
        {"t": 100.0, "nav": 10_000.0, "peak": 10_000.0, "dd_pct": 0.0},
        {"t": 105.0, "nav": "not a number", "peak": 10_000.0, "dd_pct": 0.0},
        {"t": 110.0, "nav": 9_990.0, "peak": 10_000.0, "dd_pct": 0.001},
    ]
    facade.load_snapshot({"nav_history": history})
    points = facade.view().nav.points
    assert [(p.t, p.nav) for p in points] == [(100.0, 10_000.0), (110.0, 9_990.0)]
