"""Every threshold that gates trading or raises an alert, read from the shipped config and tested
at the threshold, just under and just over it (issue 14: `>` vs `>=` must be caught).

The values come from config/risk_limits.json and config/strategy_config.json, so a change of the
shipped numbers moves the boundaries with them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actors.diagnostics.liveness import KINDS, compute_liveness
from actors.executor.risk import RiskInputs, evaluate_entry
from actors.executor.strategy import FactorModel
from actors.sync.nav_guard import PeakTracker, anomaly_reason, dd_state_for, is_nav_anomalous
from config.loader import load_json_config
from config.risk import NavAnomalyConfig, RiskLimits
from config.strategy import StrategyConfig

CONFIG = Path(__file__).resolve().parents[2] / "config"
LIMITS = load_json_config(CONFIG / "risk_limits.json", RiskLimits)
STRATEGY = load_json_config(CONFIG / "strategy_config.json", StrategyConfig)
NAV_CFG = LIMITS.nav_anomalies
TS = datetime(2025, 1, 1, tzinfo=UTC)
CENT = 0.01


def test_shipped_nav_guard_values() -> None:
    # The table below is written for these numbers (seed 001 §3): if they change, re-check it.
    assert (NAV_CFG.enabled, NAV_CFG.max_multiplier_intraday, NAV_CFG.max_gap_abs_usd) == (True, 3.0, 20_000.0)


@pytest.mark.parametrize(("peak", "nav", "reason"), [
    (5_000.0, 15_000.0, None),  # exactly 3x: not above the multiplier
    (5_000.0, 15_000.0 + CENT, "multiplier"),  # a cent over 3x (10k above: the gap rule is quiet)
    (5_000.0, 15_000.0 - CENT, None),
    (30_000.0, 50_000.0, None),  # exactly +20k: not above the gap
    (30_000.0, 50_000.0 + CENT, "gap"),  # +20k + 0.01
    (30_000.0, 50_000.0 - CENT, None),
    (25_000.0, 30_000.0, None),  # a 25k peak reading 30k: NAV above 20k is not itself a gap
    (25_000.0, 45_000.0, None),  # the jump is what counts, not the NAV
    (25_000.0, 45_000.0 + CENT, "gap"),
    (0.0, 1_000_000.0, None),  # no baseline: nothing is anomalous
    (-100.0, 1_000_000.0, None),  # a negative peak is no baseline either
    (10_000.0, 0.0, None),  # a fall is drawdown, never an anomaly
])
def test_nav_guard_boundaries(peak: float, nav: float, reason: str | None) -> None:
    assert anomaly_reason(peak, nav, NAV_CFG) == reason
    assert is_nav_anomalous(peak, nav, NAV_CFG) is (reason is not None)


def test_nav_guard_disabled_flags_nothing() -> None:
    off = NavAnomalyConfig(enabled=False, max_multiplier_intraday=3.0, max_gap_abs_usd=20_000.0)
    assert anomaly_reason(10_000.0, 1e9, off) is None


def test_peak_tracker_at_the_boundaries() -> None:
    tracker = PeakTracker(NAV_CFG, peak=30_000.0)
    assert tracker.update(50_000.0 + CENT, TS) is not None and tracker.peak == 30_000.0
    assert tracker.anomaly_count == 1 and tracker.anomalies[-1].previous_peak == 30_000.0
    assert tracker.anomalies[-1].reason == "gap" and tracker.anomalies[-1].nav == 50_000.0 + CENT
    assert tracker.update(50_000.0, TS) is None and tracker.peak == 50_000.0  # exactly +20k moves it
    assert tracker.update(49_000.0, TS) is None and tracker.peak == 50_000.0  # the peak never falls
    assert tracker.drawdown(45_000.0) == pytest.approx(0.1)
    assert tracker.drawdown(60_000.0) == 0.0 and tracker.drawdown(-1.0) == 1.0
    assert PeakTracker(NAV_CFG).drawdown(100.0) == 0.0  # no peak yet: no drawdown
    # A zero peak takes any first reading, however large.
    first = PeakTracker(NAV_CFG)
    assert first.update(1e6, TS) is None and first.peak == 1e6 and first.anomaly_count == 0
    tracker.reset(10.0)
    assert tracker.peak == 10.0 and tracker.anomaly_count == 1


@pytest.mark.parametrize(("dd", "state"), [
    (LIMITS.drawdown.caution_pct - 1e-9, "NORMAL"),
    (LIMITS.drawdown.caution_pct, "CAUTION"),
    (LIMITS.drawdown.defensive_pct - 1e-9, "CAUTION"),
    (LIMITS.drawdown.defensive_pct, "DEFENSIVE"),
    (0.0, "NORMAL"),
])
def test_drawdown_state_boundaries(dd: float, state: str) -> None:
    assert dd_state_for(dd, LIMITS.drawdown) == state


# --- liveness (seed 004: idle when age > threshold) --------------------------------------------

LIVE = STRATEGY.diagnostics.liveness


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("offset", "idle"), [(-0.001, False), (0.0, False), (0.001, True)])
def test_liveness_threshold(kind: str, offset: float, idle: bool) -> None:
    threshold_field, flag = KINDS[kind]  # type: ignore[index]
    threshold = float(getattr(LIVE, threshold_field))
    now = TS + timedelta(days=1)
    stamps = {k: now for k in KINDS}  # every other kind fresh
    stamps[kind] = now - timedelta(seconds=threshold + offset)  # type: ignore[index]
    live = compute_liveness(LIVE, stamps, now)  # type: ignore[arg-type]
    assert getattr(live, flag) is idle
    assert live.details[kind] == pytest.approx(threshold + offset)  # type: ignore[index]
    assert live.thresholds[kind] == threshold  # type: ignore[index]
    assert live.missing[kind] is False  # type: ignore[index]
    for other, (_f, other_flag) in KINDS.items():
        if other != kind:
            assert getattr(live, other_flag) is False


@pytest.mark.parametrize(("ahead", "idle"), [(0.0, False), (5.0, False), (5.001, True)])
def test_liveness_clock_skew_tolerance(ahead: float, idle: bool) -> None:
    assert LIVE.clock_skew_tolerance_seconds == 5.0
    now = TS
    stamps = {k: now for k in KINDS}
    stamps["signals"] = now + timedelta(seconds=ahead)
    live = compute_liveness(LIVE, stamps, now)  # type: ignore[arg-type]
    assert live.idle_signals is idle
    if idle:
        assert live.clock_skew_s["signals"] == pytest.approx(ahead)
        assert live.details["signals"] == LIVE.max_idle_signals_seconds + 1.0
    else:
        assert "signals" not in live.clock_skew_s and live.details["signals"] == 0.0


# --- risk vetoes (config/risk_limits.json) ------------------------------------------------------

CAPS = LIMITS.caps
NAV = 10_000.0


def _inputs(**over: object) -> RiskInputs:
    base = RiskInputs(symbol="BTCUSDT", price=100.0, lot_size=0.001, nav=NAV, nav_age_s=0.0, dd_state="NORMAL",
                      open_positions=0, symbol_exposure=0.0, portfolio_exposure=0.0, target_fraction=0.25)
    return replace(base, **over)  # type: ignore[arg-type]


@pytest.mark.parametrize(("age", "reason"), [
    (LIMITS.stale_nav_s - 0.001, None), (LIMITS.stale_nav_s, None), (LIMITS.stale_nav_s + 0.001, "stale_nav"),
])
def test_stale_nav_boundary(age: float, reason: str | None) -> None:
    assert evaluate_entry(LIMITS, _inputs(nav_age_s=age)).reason == reason


@pytest.mark.parametrize(("open_positions", "reason"), [
    (CAPS.max_open_positions - 1, None), (CAPS.max_open_positions, "max_open_positions"),
    (CAPS.max_open_positions + 1, "max_open_positions"),
])
def test_max_open_positions_boundary(open_positions: int, reason: str | None) -> None:
    assert evaluate_entry(LIMITS, _inputs(open_positions=open_positions)).reason == reason


def test_no_nav_dd_and_anomaly_vetoes() -> None:
    assert evaluate_entry(LIMITS, _inputs(dd_state="DEFENSIVE")).reason == "dd_defensive"
    assert evaluate_entry(LIMITS, _inputs(dd_state="CAUTION")).approved
    assert evaluate_entry(LIMITS, _inputs(nav=None)).reason == "stale_nav"
    assert evaluate_entry(LIMITS, _inputs(nav=0.0)).reason == "stale_nav"
    assert evaluate_entry(LIMITS, _inputs(nav=CENT)).reason != "stale_nav"  # any positive NAV is a NAV
    assert evaluate_entry(LIMITS, _inputs(nav_age_s=None)).reason == "stale_nav"
    assert evaluate_entry(LIMITS, _inputs(nav_sources_ok=False)).reason == "stale_nav"


def test_sizing_is_the_smallest_room_in_whole_lots() -> None:
    # target 2500, symbol room 3000, portfolio room 6000: 25 of price 100 (lot 0.001).
    assert evaluate_entry(LIMITS, _inputs()).qty == pytest.approx(25.0)
    # symbol room 3000 - 2000 = 1000 is the smallest.
    assert evaluate_entry(LIMITS, _inputs(symbol_exposure=2_000.0)).qty == pytest.approx(10.0)
    # portfolio room 6000 - 5500 = 500 is the smallest.
    assert evaluate_entry(LIMITS, _inputs(portfolio_exposure=5_500.0)).qty == pytest.approx(5.0)
    # Rounded down to the lot: 2500 / 300 = 8.333.. -> 8.333
    assert evaluate_entry(LIMITS, _inputs(price=300.0)).qty == pytest.approx(8.333)


@pytest.mark.parametrize(("room", "reason"), [
    (CAPS.min_notional - CENT, "symbol_exposure_cap"),  # the room is below the minimum order
    (CAPS.min_notional, None),
    (CAPS.min_notional + CENT, None),
])
def test_symbol_cap_room_at_min_notional(room: float, reason: str | None) -> None:
    exposure = NAV * CAPS.max_symbol_exposure_nav_pct - room
    decision = evaluate_entry(LIMITS, _inputs(symbol_exposure=exposure, lot_size=0.0001))
    assert decision.reason == reason
    if reason is None:
        assert decision.qty * 100.0 == pytest.approx(CAPS.min_notional, abs=0.011)


@pytest.mark.parametrize(("room", "reason"), [
    (CAPS.min_notional - CENT, "portfolio_exposure_cap"), (CAPS.min_notional, None),
])
def test_portfolio_cap_room_at_min_notional(room: float, reason: str | None) -> None:
    exposure = NAV * CAPS.max_portfolio_exposure_nav_pct - room
    assert evaluate_entry(LIMITS, _inputs(portfolio_exposure=exposure, lot_size=0.0001)).reason == reason


@pytest.mark.parametrize(("fraction", "reason"), [
    ((CAPS.min_notional - CENT) / NAV, "min_notional"), (CAPS.min_notional / NAV, None),
])
def test_min_notional_boundary(fraction: float, reason: str | None) -> None:
    assert evaluate_entry(LIMITS, _inputs(target_fraction=fraction, lot_size=0.0001)).reason == reason


def test_no_room_and_no_minimum_refuses_instead_of_approving_zero() -> None:
    """Product bug (issue 14): with min_notional 0 and the cap used up, qty 0 was approved."""
    limits = LIMITS.model_copy(update={"caps": CAPS.model_copy(update={"min_notional": 0.0})})
    full = NAV * CAPS.max_symbol_exposure_nav_pct
    decision = evaluate_entry(limits, _inputs(symbol_exposure=full))
    assert decision.reason == "symbol_exposure_cap" and not decision.approved
    over = evaluate_entry(limits, _inputs(portfolio_exposure=NAV * CAPS.max_portfolio_exposure_nav_pct))
    assert over.reason == "portfolio_exposure_cap"
    # A target smaller than one lot is no order either.
    assert evaluate_entry(limits, _inputs(target_fraction=1e-9)).reason == "min_notional"
    assert evaluate_entry(limits, _inputs()).qty == pytest.approx(25.0)


# --- strategy thresholds (config/strategy_config.json) ------------------------------------------

SIGNAL = STRATEGY.signal


@pytest.mark.parametrize(("ratio", "regime"), [
    (SIGNAL.atr_low_ratio - 1e-9, "low"), (SIGNAL.atr_low_ratio, "normal"),
    (SIGNAL.atr_high_ratio, "normal"), (SIGNAL.atr_high_ratio + 1e-9, "high"),
])
def test_atr_regime_boundaries(ratio: float, regime: str) -> None:
    assert FactorModel(SIGNAL).regime(ratio) == regime


@pytest.mark.parametrize(("score", "conviction"), [
    (SIGNAL.entry_threshold, 0.5), (2 * SIGNAL.entry_threshold, 1.0), (-2 * SIGNAL.entry_threshold, 1.0),
    (3 * SIGNAL.entry_threshold, 1.0), (SIGNAL.entry_threshold / 2, 0.25),
])
def test_conviction_at_the_entry_threshold(score: float, conviction: float) -> None:
    assert FactorModel(SIGNAL).conviction(score) == pytest.approx(conviction)
