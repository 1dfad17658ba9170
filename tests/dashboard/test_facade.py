"""The dashboard facade: bus state in, DashboardView out (no transport, no processes)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from actors.dashboard.facade import DashboardFacade, liveness_kind
from bus.messages import ExitPipeline, Liveness, RuntimeDiagnostics, RuntimeDiagnosticsBlock, VetoCounters
from tests import SIM_SCOPE
from tests.dashboard import samples

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def facade_with(*msgs) -> DashboardFacade:
    facade = DashboardFacade(clock=lambda: NOW)
    for msg in msgs:
        facade.apply(msg)
    return facade


def test_positions_join_the_ledger_for_tp_sl_and_age_and_skip_flat_rows() -> None:
    view = facade_with(samples.positions(), samples.ledger(NOW)).view()
    rows = {r.symbol: r for r in view.positions.rows}
    assert set(rows) == {"BTCUSDT", "ETHUSDT"}
    btc, eth = rows["BTCUSDT"], rows["ETHUSDT"]
    assert (btc.side, btc.qty, btc.entry_price, btc.mark_price, btc.unrealized_pnl) == ("LONG", 0.01, 42000, 43000, 10)
    assert (btc.tp, btc.sl, btc.age_s) == (45000.0, 41000.0, 42 * 60)
    assert (eth.tp, eth.sl) == (None, 2600.0)  # the entry has none; the tp_sl_levels map has an SL
    assert view.positions.unrealized_total == -15.0


def _pnl(*scopes: tuple[str, str, float]) -> dict:
    from bus.messages import PnlScope, PnlToday

    return PnlToday(day="2025-06-01", scopes=[
        PnlScope(mode=m, account=a, realized_gross=total, fees=0.0, realized_net=total, unrealized=0.0, total=total)
        for m, a, total in scopes]).model_dump(mode="json")


def test_pnl_today_is_the_store_view_of_the_active_scope_never_a_sum_of_scopes() -> None:
    assert facade_with().view().pnl_today.total is None
    # The KPI document's copy is not a second path to the same number.
    assert facade_with(samples.kpis()).view().pnl_today.total is None
    facade = facade_with()
    facade.load_views({"active_scope": {"mode": "LIVE", "account": "main", "since_seq": 4},
                       "pnl_today": _pnl(("LIVE", "main", -300.0), ("SIM", "paper", 500.0))})
    panel = facade.view().pnl_today
    assert (panel.active, panel.total) == ("LIVE/main", -300.0)
    assert [(s.mode, s.total) for s in panel.scopes] == [("LIVE", -300.0), ("SIM", 500.0)]
    facade.load_views({"active_scope": {"mode": "SIM", "account": "paper", "since_seq": 9}})
    assert facade.view().pnl_today.total == 500.0


def test_nav_history_builds_from_samples_in_time_order_with_anomalies() -> None:
    facade = facade_with()
    for i in range(5):
        facade.apply(samples.nav(10_000 + i, 10_004, NOW + timedelta(seconds=i), anomaly_at=NOW))
    view = facade.view()
    assert view.nav.anomalies[0].nav == 37_000.0 and view.nav.anomaly_count == 1
    assert view.nav.nav_total == 10_004 and view.nav.peak_nav == 10_004
    facade.apply(samples.nav(1, 1, NOW - timedelta(seconds=10)))  # older: never reorders the series
    assert [p.nav for p in facade.view().nav.points] == [10_000, 10_001, 10_002, 10_003, 10_004]


def diag(**block) -> RuntimeDiagnostics:
    return RuntimeDiagnostics(scope=SIM_SCOPE, updated_at=NOW - timedelta(seconds=2),
                              runtime_diagnostics=RuntimeDiagnosticsBlock(**block))


def test_veto_heatmap_is_reason_by_symbol() -> None:
    vc = VetoCounters(by_reason={"max_open_positions": 3, "stale_nav": 1, "old_reason": 2},
                      by_reason_symbol={"max_open_positions": {"BTCUSDT": 2, "ETHUSDT": 1},
                                        "stale_nav": {"SOLUSDT": 1}},
                      total_vetoes=6)
    heat = facade_with(diag(veto_counters=vc)).view().vetoes
    assert heat.reasons == ["max_open_positions", "old_reason", "stale_nav"]
    assert heat.symbols == ["(any)", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert heat.cells[0] == [0, 2, 1, 0] and heat.cells[1] == [2, 0, 0, 0]
    assert heat.max == 2 and heat.total_vetoes == 6


def test_liveness_card_says_healthy_idle_never_seen() -> None:
    live = Liveness(idle_signals=False, idle_orders=True, idle_exits=True, idle_router=True,
                    details={"signals": 30.0, "orders": 45 * 60.0, "exits": 3601.0, "router": 1801.0},
                    missing={"signals": False, "orders": False, "exits": True, "router": False},
                    thresholds={"signals": 600.0, "orders": 1200.0, "exits": 3600.0, "router": 1800.0},
                    clock_skew_s={"router": 7200.0})
    kinds = {k.kind: k for k in facade_with(diag(liveness=live)).view().liveness.kinds}
    assert kinds["signals"].state == "healthy" and kinds["signals"].text == "healthy: last 30s ago"
    assert kinds["orders"].state == "idle" and kinds["orders"].text == "idle for 45 min (limit 20 min)"
    assert kinds["exits"].state == "never_seen"
    assert kinds["router"].state == "clock_skew"
    assert liveness_kind("signals", Liveness(enabled=False)).state == "disabled"


def test_without_diagnostics_the_card_says_unknown_not_healthy() -> None:
    panel = facade_with().view().liveness
    assert not panel.reported and panel.diagnostics_stale
    assert {k.state for k in panel.kinds} == {"unknown"}


def test_exit_health_and_reconciliation_absent_by_default() -> None:
    view = facade_with(diag(exit_pipeline=ExitPipeline(open_positions_count=2, tp_sl_registered_count=1,
                                                       tp_sl_missing_count=1, tp_sl_coverage_pct=0.5,
                                                       ledger_registry_mismatch=True))).view()
    assert view.exit_health.exit_pipeline.ledger_registry_mismatch
    assert view.reconciliation is None


def test_snapshot_replaces_documents_and_skips_invalid_ones() -> None:
    facade = facade_with(samples.router())
    state = {"positions_state": samples.positions().to_document(),
             "kpis_v7": {"portfolio": {"nav": -1}},  # invalid: not shown, no crash
             "heartbeats": {}}
    facade.load_snapshot(state)
    view = facade.view()
    assert len(view.positions.rows) == 2 and view.kpis.kpis is None and view.router.router is None


def test_hub_is_judged_by_the_age_of_its_last_frame() -> None:
    facade = facade_with()
    assert not facade.view().hub.connected
    facade.set_hub(synced=True, seq=7, last_seen_mono=time.monotonic(), silent_after_s=5.0)
    hub = facade.view().hub
    assert hub.connected and hub.seq == 7
    before = facade.version
    facade.set_hub(synced=True, seq=8, last_seen_mono=time.monotonic() - 6, silent_after_s=5.0, detail="retrying")
    hub = facade.view().hub
    assert not hub.connected and hub.detail == "retrying" and facade.version > before


def test_the_dashboard_never_touches_state_files() -> None:
    # Everything comes from the bus: no file reader, no state path, anywhere in the package.
    package = Path(__file__).resolve().parents[2] / "actors" / "dashboard"
    for path in package.rglob("*.py"):
        text = path.read_text()
        for needle in ("state_reader", "state_path", "logs/state", "STATE_DIR", "state_dir"):
            assert needle not in text, f"{path.name} mentions {needle}"


def test_store_views_fill_gaps_and_show_reconciliation_issues() -> None:
    from bus.messages import ReconciliationIssue, ReconciliationView, StoredPosition

    stored = StoredPosition(mode="SIM", account="paper", symbol="ETHUSDT", side="SHORT", qty=0.5, entry_price=2500.0,
                            entry_time=NOW - timedelta(hours=2), position_id="p2", tp=2300.0, sl=2700.0,
                            trade_min_price=2490.0, trade_max_price=2560.0, opened_seq=1, updated_seq=2,
                            created_at=NOW, updated_at=NOW)
    issue = ReconciliationIssue(mode="SIM", account="paper", symbol="BTCUSDT", kind="qty_mismatch", policy="warn",
                                store_side="LONG", store_qty=0.01, exchange_side="LONG", exchange_qty=0.02,
                                opened_seq=3, last_seen_seq=4, opened_at=NOW)
    facade = facade_with(samples.positions())  # no ledger, no KPIs
    assert facade.view().reconciliation is None
    facade.load_views({
        "open_positions": [stored.model_dump(mode="json")],
        "active_scope": {"mode": "SIM", "account": "paper", "since_seq": 0},
        "pnl_today": _pnl(("SIM", "paper", 6.0)),
        "reconciliation": ReconciliationView(policy="warn", issues=[issue]).model_dump(mode="json"),
    })
    view = facade.view()
    eth = next(r for r in view.positions.rows if r.symbol == "ETHUSDT")
    assert (eth.tp, eth.sl, eth.age_s) == (2300.0, 2700.0, 7200.0)
    assert view.pnl_today.total == 6.0 and view.pnl_today.active == "SIM/paper"
    # A view that does not validate keeps its last good value; the others still move.
    facade.load_views({"pnl_today": {"day": "2025-06-01", "scopes": "not a list"},
                       "active_scope": {"mode": "SIM", "account": "other", "since_seq": 1}})
    assert facade.view().pnl_today.active == "SIM/other" and facade.view().pnl_today.scopes[0].total == 6.0
    assert view.reconciliation is not None and view.reconciliation.issues[0].kind == "qty_mismatch"
    facade.load_views({"reconciliation": ReconciliationView(policy="warn").model_dump(mode="json")})
    agreed = facade.view().reconciliation  # nothing open: shown as reconciled, not hidden
    assert agreed is not None and agreed.issues == [] and agreed.halted == []


def test_header_names_the_scope_and_follows_halts_and_the_nav_guard() -> None:
    from bus.messages import HaltEntries, ResumeEntries

    facade = DashboardFacade(clock=lambda: NOW, mode="LIVE", network="testnet", account="main")
    header = facade.view().trading
    assert (header.mode, header.network, header.account, header.halted, header.nav_guard) == (
        "LIVE", "testnet", "main", False, None)
    facade.apply(HaltEntries(mode="SIM", account="paper", operator="ops", reason="other scope"))
    assert not facade.view().trading.halted
    facade.apply(HaltEntries(mode="LIVE", account="main", operator="ops", reason="exchange incident"))
    header = facade.view().trading
    assert header.halted and "exchange incident" in header.halt_detail and "v7 resume" in header.halt_detail
    facade.apply(ResumeEntries(mode="LIVE", account="main", operator="ops", reason="over"))
    assert not facade.view().trading.halted
    # A restart: the snapshot carries the newest halt for the scope.
    facade.load_snapshot({"entry_halts": {"LIVE/main": {"type": "halt_entries", "operator": "ops", "reason": "r"}}})
    assert facade.view().trading.halted
    bad = samples.nav(10_000, 10_004, NOW, anomaly_at=NOW).model_copy(update={"sources_ok": False})
    facade.apply(bad)
    guard = facade.view().trading.nav_guard
    assert guard and "37,000.00" in guard and "v7 nav reset-peak" in guard
