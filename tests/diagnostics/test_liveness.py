"""Seed 004 §5.1: liveness semantics of `compute_liveness` (missing, within/beyond threshold, missing map),
plus the decisions beyond the seed: clock skew and unparseable timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from actors.diagnostics.liveness import compute_liveness, liveness_stamps, parse_ts
from bus.messages import ExitPipeline, VetoCounters
from config.strategy import LivenessConfig

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
CFG = LivenessConfig(max_idle_signals_seconds=10, max_idle_orders_seconds=20, max_idle_exits_seconds=30,
                     max_idle_router_events_seconds=40)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def stamps(signals=None, orders=None, exits=None, router=None):
    return {"signals": signals, "orders": orders, "exits": exits, "router": router}


def test_missing_timestamps_are_idle_with_threshold_plus_one() -> None:
    live = compute_liveness(CFG, stamps(), NOW)
    assert (live.idle_signals, live.idle_orders, live.idle_exits, live.idle_router) == (True, True, True, True)
    assert live.missing == {"signals": True, "orders": True, "exits": True, "router": True}
    assert live.details == {"signals": 11.0, "orders": 21.0, "exits": 31.0, "router": 41.0}
    assert live.details["signals"] >= CFG.max_idle_signals_seconds


def test_within_threshold_is_not_idle_and_reports_duration() -> None:
    live = compute_liveness(CFG, stamps(ago(5), ago(5), ago(5), ago(5)), NOW)
    assert not any((live.idle_signals, live.idle_orders, live.idle_exits, live.idle_router))
    assert live.details == {"signals": 5.0, "orders": 5.0, "exits": 5.0, "router": 5.0}
    assert live.missing == {"signals": False, "orders": False, "exits": False, "router": False}


def test_beyond_threshold_is_idle_with_the_real_duration() -> None:
    live = compute_liveness(CFG, stamps(ago(10.5), ago(19), ago(300), ago(41)), NOW)
    assert live.idle_signals and live.details["signals"] == 10.5
    assert not live.idle_orders and live.details["orders"] == 19.0
    assert live.idle_exits and live.details["exits"] == 300.0
    assert live.idle_router and live.details["router"] == 41.0 > CFG.max_idle_router_events_seconds
    assert not any(live.missing.values())


def test_missing_map_marks_only_missing_kinds() -> None:
    live = compute_liveness(CFG, stamps(signals=None, orders=ago(1), exits=None, router=ago(1)), NOW)
    assert live.missing["signals"] is True and live.missing["exits"] is True
    assert live.missing["orders"] is False and live.missing["router"] is False
    assert live.idle_signals and not live.idle_orders


def test_disabled_means_every_flag_false_and_nothing_reported() -> None:
    cfg = CFG.model_copy(update={"enabled": False})
    live = compute_liveness(cfg, stamps(), NOW)
    assert not any((live.idle_signals, live.idle_orders, live.idle_exits, live.idle_router))
    assert live.details == {} and live.missing == {} and live.enabled is False


def test_threshold_zero_or_negative_skips_that_kind() -> None:
    cfg = CFG.model_copy(update={"max_idle_signals_seconds": 0, "max_idle_orders_seconds": -1})
    live = compute_liveness(cfg, stamps(), NOW)
    assert not live.idle_signals and not live.idle_orders
    assert "signals" not in live.details and "orders" not in live.missing
    assert live.idle_exits and live.idle_router


def test_small_clock_skew_reads_as_now() -> None:
    live = compute_liveness(CFG, stamps(signals=NOW + timedelta(seconds=2)), NOW)
    assert live.details["signals"] == 0.0 and not live.idle_signals and live.clock_skew_s == {}


def test_future_timestamp_beyond_tolerance_counts_idle_not_healthy() -> None:
    live = compute_liveness(CFG, stamps(signals=NOW + timedelta(hours=1)), NOW)
    assert live.idle_signals
    assert live.clock_skew_s["signals"] == 3600.0
    assert live.details["signals"] == 11.0  # unknown age: threshold + 1, never negative
    assert live.missing["signals"] is False


def test_unparseable_timestamp_counts_missing_and_idle() -> None:
    live = compute_liveness(CFG, stamps(signals="yesterday-ish", orders="2025-13-45T99:00:00Z"), NOW)
    assert live.idle_signals and live.idle_orders
    assert live.unparseable == {"signals": True, "orders": True}
    assert live.missing["signals"] and live.details["signals"] == 11.0


def test_iso_strings_with_z_and_naive_times_parse_as_utc() -> None:
    assert parse_ts("2025-06-01T11:59:50Z") == ago(10)
    assert parse_ts("2025-06-01T11:59:50") == ago(10)
    assert parse_ts("") is None and parse_ts(None) is None
    live = compute_liveness(CFG, stamps(signals="2025-06-01T11:59:55.5Z"), NOW)
    assert live.details["signals"] == 4.5


def test_exits_are_judged_by_the_last_exit_trigger_and_router_by_router_events() -> None:
    exits = ExitPipeline(last_exit_scan_ts=ago(1), last_exit_trigger_ts=None, last_router_event_ts=ago(2))
    live = compute_liveness(CFG, liveness_stamps(VetoCounters(last_signal_ts=ago(3)), exits), NOW)
    assert live.idle_exits and live.missing["exits"]  # scans alone do not make exits live (seed 004)
    assert not live.idle_router and live.details["router"] == 2.0
    assert not live.idle_signals


@given(
    value=st.one_of(st.none(), st.text(max_size=40), st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))),
    threshold=st.floats(min_value=-10, max_value=1e6, allow_nan=False),
)
def test_never_crashes_never_negative_never_silently_healthy(value, threshold) -> None:
    cfg = LivenessConfig(max_idle_signals_seconds=threshold)
    live = compute_liveness(cfg, stamps(signals=value), NOW)
    if threshold <= 0:
        assert "signals" not in live.details and not live.idle_signals
        return
    assert live.details["signals"] >= 0
    parsed = parse_ts(value)
    if not isinstance(parsed, datetime):
        assert live.idle_signals and live.missing["signals"]
    elif parsed > NOW + timedelta(seconds=cfg.clock_skew_tolerance_seconds):
        assert live.idle_signals
    else:
        assert live.idle_signals == ((NOW - parsed).total_seconds() > threshold)
