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


def _series(*times: float) -> list[dict[str, float]]:
    return [{"t": t, "nav": 10_000.0 + i, "peak": 10_000.0 + i, "dd_pct": 0.0} for i, t in enumerate(times)]


def test_a_stop_of_the_group_is_a_gap_in_the_chart_not_a_flat_line() -> None:
    facade = DashboardFacade(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC), nav_gap_s=60.0)
    # Every 2 s, then nothing for an hour, then every 2 s again; exactly 60 s apart is no gap.
    facade.load_snapshot({"nav_history": _series(0, 2, 4, 3604, 3606, 3666)})
    points = facade.view().nav.points
    assert [p.gap_before for p in points] == [False, False, False, True, False, False]
    assert facade.view().nav.gap_after_s == 60.0


def test_thinning_keeps_a_gap_it_steps_over() -> None:
    from actors.dashboard.facade import nav_points
    from actors.dashboard.view import NavPoint

    times = [2.0 * i for i in range(1000)] + [10_000.0 + 2.0 * i for i in range(1000)]
    points = [NavPoint(t=t, nav=1.0, peak=1.0, dd_pct=0.0) for t in times]
    thinned = nav_points(points, 60.0, 100)
    assert len(thinned) == 100
    gaps = [p for p in thinned if p.gap_before]
    assert len(gaps) == 1 and gaps[0].t >= 10_000.0
    previous = thinned[thinned.index(gaps[0]) - 1]
    assert previous.t < 2000.0
