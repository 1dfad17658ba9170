"""Seed 004 §5.2/§5.3 at the fold level: router activity, coverage and mismatch, veto counting, restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actors.diagnostics.liveness import compute_liveness, liveness_stamps
from actors.diagnostics.tracker import DiagnosticsTracker
from bus.messages import (
    EntryVetoed,
    ExitScanCompleted,
    OrderUpdated,
    RequestExit,
    RouterActed,
    RuntimeDiagnostics,
    SignalGenerated,
    SubmitOrder,
)
from config.strategy import DiagnosticsConfig, LivenessConfig
from tests import SIM_SCOPE

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def scan(open_: int, registered: int, underwater: int = 0, missing_symbols: tuple[str, ...] = ()) -> ExitScanCompleted:
    missing = open_ - registered
    return ExitScanCompleted(
        ts=T0, open_positions_count=open_, tp_sl_registered_count=registered, tp_sl_missing_count=missing,
        underwater_without_tp_sl_count=underwater, tp_sl_coverage_pct=registered / open_ if open_ else 0.0,
        ledger_registry_mismatch=missing > 0, missing_symbols=list(missing_symbols),
    )


def test_router_event_sets_last_router_event_ts_and_idle_router_follows_threshold() -> None:
    tracker = DiagnosticsTracker(DiagnosticsConfig())
    cfg = LivenessConfig(max_idle_router_events_seconds=60)
    before = compute_liveness(cfg, liveness_stamps(tracker.veto, tracker.exits), T0)
    assert before.idle_router and before.missing["router"]
    assert tracker.apply(RouterActed(ts=T0, intent_id="i1", symbol="BTCUSDT", action="post_maker"))
    assert tracker.exits.last_router_event_ts == T0
    soon = compute_liveness(cfg, liveness_stamps(tracker.veto, tracker.exits), T0 + timedelta(seconds=30))
    assert not soon.idle_router and soon.details["router"] == 30.0 and soon.missing["router"] is False
    late = compute_liveness(cfg, liveness_stamps(tracker.veto, tracker.exits), T0 + timedelta(seconds=61))
    assert late.idle_router and late.details["router"] == 61.0


def test_full_coverage_has_no_mismatch() -> None:
    tracker = DiagnosticsTracker(DiagnosticsConfig())
    tracker.apply(scan(3, 3))
    assert tracker.exits.tp_sl_coverage_pct == 1.0
    assert tracker.exits.ledger_registry_mismatch is False
    assert tracker.exits.tp_sl_missing_count == 0
    assert tracker.exits.last_exit_scan_ts == T0


def test_partial_coverage_is_a_mismatch_with_the_missing_count() -> None:
    tracker = DiagnosticsTracker(DiagnosticsConfig())
    tracker.apply(scan(4, 1, underwater=2, missing_symbols=("ETHUSDT", "SOLUSDT", "XRPUSDT")))
    ep = tracker.exits
    assert 0.0 < ep.tp_sl_coverage_pct < 1.0 and ep.tp_sl_coverage_pct == 0.25
    assert ep.ledger_registry_mismatch is True
    assert ep.tp_sl_missing_count == 3 and ep.underwater_without_tp_sl_count == 2
    assert ep.missing_symbols == ["ETHUSDT", "SOLUSDT", "XRPUSDT"]


def test_vetoes_signals_orders_are_counted_by_reason_and_symbol() -> None:
    tracker = DiagnosticsTracker(DiagnosticsConfig())
    for i in range(3):
        tracker.apply(SignalGenerated(ts=T0, signal_id=f"s{i}", symbol="BTCUSDT", direction="LONG", score=1.0))
    tracker.apply(EntryVetoed(ts=T0, symbol="BTCUSDT", reason="max_open_positions"))
    tracker.apply(EntryVetoed(ts=T0, symbol="ETHUSDT", reason="max_open_positions"))
    tracker.apply(EntryVetoed(ts=T0 + timedelta(seconds=1), symbol="ETHUSDT", reason="stale_nav"))
    tracker.apply(SubmitOrder(mode="SIM", account="paper", ts=T0, intent_id="i1", symbol="BTCUSDT", side="BUY",
                              qty=1.0))
    tracker.apply(OrderUpdated(mode="SIM", account="paper", ts=T0 + timedelta(seconds=2), intent_id="i1",
                               order_id="o1", symbol="BTCUSDT", side="BUY", status="NEW", order_type="LIMIT", qty=1.0))
    vc = tracker.veto
    assert vc.total_signals == 3 and vc.total_vetoes == 3 and vc.total_orders == 1
    assert vc.by_reason == {"max_open_positions": 2, "stale_nav": 1}
    assert vc.by_reason_symbol == {"max_open_positions": {"BTCUSDT": 1, "ETHUSDT": 1}, "stale_nav": {"ETHUSDT": 1}}
    assert vc.last_veto_ts == T0 + timedelta(seconds=1)
    assert vc.last_order_ts == T0 + timedelta(seconds=2)  # exchange order activity counts as order activity


def test_exit_trigger_moves_last_exit_trigger_ts() -> None:
    tracker = DiagnosticsTracker(DiagnosticsConfig())
    tracker.apply(RequestExit(mode="SIM", account="paper", ts=T0, intent_id="x1", symbol="BTCUSDT", position_id="p1",
                              reason="SL", side="SELL", qty=1.0, mark_price=100.0))
    assert tracker.exits.last_exit_trigger_ts == T0


def test_disabled_blocks_do_not_count() -> None:
    cfg = DiagnosticsConfig.model_validate({"veto_metrics": {"enabled": False}, "exit_pipeline": {"enabled": False}})
    tracker = DiagnosticsTracker(cfg)
    assert not tracker.apply(EntryVetoed(ts=T0, symbol="BTCUSDT", reason="x"))
    assert not tracker.apply(RouterActed(ts=T0, intent_id="i1", symbol="BTCUSDT", action="reject"))
    assert tracker.veto.total_vetoes == 0 and tracker.exits.last_router_event_ts is None


def test_restore_continues_counts_and_keeps_known_timestamps() -> None:
    first = DiagnosticsTracker(DiagnosticsConfig())
    first.apply(EntryVetoed(ts=T0, symbol="BTCUSDT", reason="max_open_positions"))
    first.apply(RouterActed(ts=T0, intent_id="i1", symbol="BTCUSDT", action="complete"))
    document = RuntimeDiagnostics(scope=SIM_SCOPE, runtime_diagnostics=first.block()).to_document()

    second = DiagnosticsTracker(DiagnosticsConfig())
    assert second.restore(document)
    second.apply(EntryVetoed(ts=T0, symbol="BTCUSDT", reason="max_open_positions"))
    assert second.veto.by_reason == {"max_open_positions": 2}
    assert second.exits.last_router_event_ts == T0


def test_restore_survives_a_broken_block_and_keeps_the_good_one() -> None:
    tracker = DiagnosticsTracker(DiagnosticsConfig())
    doc = {"runtime_diagnostics": {"veto_counters": {"total_vetoes": -5},
                                   "exit_pipeline": {"last_router_event_ts": "2025-06-01T12:00:00Z"}}}
    assert tracker.restore(doc)
    assert tracker.veto.total_vetoes == 0
    assert tracker.exits.last_router_event_ts == T0
    assert not tracker.restore(None) and not tracker.restore({"updated_at": "x"})
