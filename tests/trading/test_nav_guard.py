"""Seed 001 §4.2: the NAV anomaly guard, and drawdown states from the configured thresholds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from actors.sync.nav_guard import PeakTracker, dd_state_for, is_nav_anomalous
from config.risk import DrawdownConfig, NavAnomalyConfig

CFG = NavAnomalyConfig(enabled=True, max_multiplier_intraday=3.0, max_gap_abs_usd=20_000.0)
TS = datetime(2025, 1, 1, tzinfo=UTC)


def test_small_move_is_not_anomalous() -> None:
    assert is_nav_anomalous(10_000, 10_500, CFG) is False


def test_multiplier_anomaly() -> None:
    assert is_nav_anomalous(10_000, 40_000, CFG) is True


def test_gap_anomaly() -> None:
    # 32k is only 3.2x... and 22k above the peak: the gap rule catches it even with a high multiplier.
    cfg = NavAnomalyConfig(enabled=True, max_multiplier_intraday=10.0, max_gap_abs_usd=20_000.0)
    assert is_nav_anomalous(10_000, 32_000, cfg) is True
    assert is_nav_anomalous(10_000, 32_000, CFG) is True


def test_no_baseline_is_not_anomalous() -> None:
    assert is_nav_anomalous(0, 37_000, CFG) is False


def test_disabled_guard_never_flags() -> None:
    assert is_nav_anomalous(10_000, 1_000_000, NavAnomalyConfig(enabled=False)) is False


def test_stream_leaves_peak_at_last_good_nav() -> None:
    tracker = PeakTracker(CFG)
    for nav in (10_000, 10_500, 40_000):
        tracker.update(nav, TS)
    assert tracker.peak == 10_500
    assert tracker.anomaly_count == 1
    [anomaly] = tracker.anomalies
    assert (anomaly.nav, anomaly.previous_peak, anomaly.reason) == (40_000, 10_500, "multiplier")
    # The ghost reading does not count as drawdown either way, and a real dip does.
    assert tracker.drawdown(40_000) == 0.0
    assert tracker.drawdown(9_450) == pytest.approx(0.1)


@pytest.mark.parametrize(("dd", "state"), [(0.0, "NORMAL"), (0.049, "NORMAL"), (0.05, "CAUTION"),
                                           (0.0999, "CAUTION"), (0.10, "DEFENSIVE"), (0.5, "DEFENSIVE")])
def test_dd_state_thresholds(dd: float, state: str) -> None:
    assert dd_state_for(dd, DrawdownConfig(caution_pct=0.05, defensive_pct=0.10)) == state
