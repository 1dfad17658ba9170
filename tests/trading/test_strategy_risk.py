"""Factor model, risk vetoes and sizing, VaR/CVaR, brackets and exit rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from actors.executor.ledger import bracket
from actors.executor.risk import RiskInputs, evaluate_entry, horizon_scale, var_cvar
from actors.executor.strategy import FactorModel
from actors.exit_scanner.rules import ExitLevels
from config.risk import RiskLimits
from config.strategy import EntryConfig, SignalConfig
from exchange.adapter import Bar

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def bars_from(closes: list[float], wiggle: float = 0.002) -> list[Bar]:
    out = []
    prev = closes[0]
    for i, close in enumerate(closes):
        hi = max(prev, close) * (1 + wiggle)
        lo = min(prev, close) * (1 - wiggle)
        out.append(Bar(ts=T0 + timedelta(minutes=5 * i), open=prev, high=hi, low=lo, close=close))
        prev = close
    return out


def test_uptrend_is_long_and_downtrend_is_short() -> None:
    model = FactorModel(SignalConfig())
    up = model.evaluate("BTCUSDT", bars_from([100 * (1.002 ** i) for i in range(120)]))
    down = model.evaluate("BTCUSDT", bars_from([100 * (0.998 ** i) for i in range(120)]))
    assert up is not None and down is not None
    assert up.direction == "LONG" and up.factors["trend"] > 0 and up.factors["momentum"] > 0
    assert down.direction == "SHORT" and down.score < 0
    assert set(up.factors) == {"trend", "momentum", "volatility"}
    assert all(-1.0 <= v <= 1.0 for v in up.factors.values())


def test_flat_market_has_no_signal_and_too_few_bars_no_view() -> None:
    model = FactorModel(SignalConfig())
    flat = model.evaluate("ETHUSDT", bars_from([100 + 0.01 * math.sin(i) for i in range(120)]))
    assert flat is not None and flat.direction == "FLAT"
    assert model.evaluate("ETHUSDT", bars_from([100.0] * 10)) is None


def test_volatility_regime() -> None:
    model = FactorModel(SignalConfig())
    calm_then_wild = [100 + 0.05 * (i % 2) for i in range(100)] + [100 + 3 * (i % 2) for i in range(20)]
    view = model.evaluate("SOLUSDT", bars_from(calm_then_wild, wiggle=0.0))
    assert view is not None and view.regime == "high" and view.atr_ratio > 1.25


def inputs(**overrides: object) -> RiskInputs:
    base = {"symbol": "BTCUSDT", "price": 50_000.0, "lot_size": 0.001, "nav": 10_000.0, "nav_age_s": 1.0,
            "dd_state": "NORMAL", "open_positions": 0, "symbol_exposure": 0.0, "portfolio_exposure": 0.0,
            "target_fraction": 0.25}
    return RiskInputs(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"dd_state": "DEFENSIVE"}, "dd_defensive"),
    ({"nav": None, "nav_age_s": None}, "stale_nav"),
    ({"nav_age_s": 60.0}, "stale_nav"),
    ({"nav_sources_ok": False}, "stale_nav"),
    ({"open_positions": 2}, "max_open_positions"),
    ({"portfolio_exposure": 6_000.0}, "portfolio_exposure_cap"),
    ({"symbol_exposure": 3_000.0}, "symbol_exposure_cap"),
    ({"target_fraction": 0.0009}, "min_notional"),
])
def test_vetoes_have_named_reasons(overrides: dict, reason: str) -> None:
    decision = evaluate_entry(RiskLimits(), inputs(**overrides))
    assert decision.reason == reason and decision.detail


def test_sizing_is_capped_by_room_and_rounded_to_the_lot() -> None:
    ok = evaluate_entry(RiskLimits(), inputs())
    assert ok.approved and ok.qty == 0.05  # 25% of 10k at 50k
    capped = evaluate_entry(RiskLimits(), inputs(portfolio_exposure=5_500.0))  # 500 of room under 60%
    assert capped.approved and capped.qty == 0.01


def test_var_and_cvar_from_nav_history() -> None:
    navs = [10_000.0]
    for i in range(200):
        navs.append(navs[-1] * (1 - 0.01 if i % 20 == 0 else 1 + 0.001))
    navs[150] = navs[149] * 0.97  # one bigger loss in the tail
    var, cvar = var_cvar(navs, 0.95, 30)
    # 200 returns: the worst 10 (5%) are one -3% and nine -1%; VaR is the 10th worst, CVaR their mean.
    assert var == pytest.approx(0.01, rel=1e-6)
    assert cvar == pytest.approx((0.03 + 9 * 0.01) / 10, rel=1e-3)
    assert var_cvar(navs[:10], 0.95, 30) == (None, None)


def test_var_is_quoted_for_the_configured_horizon() -> None:
    # NAV sampled every 2 s (one late sample does not move the median spacing): a one-day VaR is
    # the per-sample figure times sqrt(86400 / 2).
    times = [0.0, 2.0, 4.0, 6.0, 20.0, 22.0]
    assert horizon_scale(times, 86_400.0) == pytest.approx(math.sqrt(43_200.0))
    assert horizon_scale([5.0], 86_400.0) == 1.0  # spacing unknown: unscaled
    navs = [10_000.0 * (1 - 0.001 * (i % 3 == 0)) for i in range(100)]
    var, cvar = var_cvar(navs, 0.95, 30)
    scaled = var_cvar(navs, 0.95, 30, scale=10.0)
    assert scaled == (pytest.approx(var * 10), pytest.approx(cvar * 10))
    assert var_cvar(navs, 0.95, 30, scale=1e6) == (1.0, 1.0)  # never more than all of NAV


def test_bracket_is_atr_based_on_the_right_side() -> None:
    cfg = EntryConfig(tp_atr_mult=2.0, sl_atr_mult=1.5)
    assert bracket("LONG", 100.0, 1.0, cfg, 0.01) == (102.0, 98.5)
    assert bracket("SHORT", 100.0, 1.0, cfg, 0.01) == (98.0, 101.5)


def test_exit_rules_long_short_and_ttl() -> None:
    long = ExitLevels("BTCUSDT", "LONG", "p1", tp=110.0, sl=95.0, ttl_ts=T0 + timedelta(minutes=5))
    assert long.check(100.0, T0) is None
    assert long.check(110.0, T0) == ("TP", 110.0)
    assert long.check(94.0, T0) == ("SL", 95.0)
    assert long.check(100.0, T0 + timedelta(minutes=5)) == ("TTL", None)
    short = ExitLevels("ETHUSDT", "SHORT", "p2", tp=90.0, sl=105.0, ttl_ts=None)
    assert short.check(89.0, T0) == ("TP", 90.0)
    assert short.check(106.0, T0) == ("SL", 105.0)
    assert short.check(100.0, T0 + timedelta(days=1)) is None
    assert ExitLevels("X1", "LONG", "p3", tp=None, sl=90.0, ttl_ts=None).protected is False
