"""The diagnostics actor as a real process against a real state writer (seed 004 §5.2-5.4, restart, metrics)."""

from __future__ import annotations

import json
import signal
import time

from bus.messages import EntryVetoed, ExitScanCompleted, RouterActed, SignalGenerated, SubmitOrder
from tests.diagnostics.helpers import ROUTER_IDLE_S, read_diagnostics, wait_diagnostics
from tests.harness import Instance
from tests.producers import Producers
from tests.support.metrics import metrics_text

SEED_EXIT_KEYS = {"last_exit_scan_ts", "last_exit_trigger_ts", "last_router_event_ts", "open_positions_count",
                  "tp_sl_registered_count", "tp_sl_missing_count", "underwater_without_tp_sl_count",
                  "tp_sl_coverage_pct", "ledger_registry_mismatch"}
SEED_VETO_KEYS = {"by_reason", "total_signals", "total_orders", "total_vetoes", "last_signal_ts", "last_order_ts",
                  "last_veto_ts"}
SEED_LIVENESS_KEYS = {"idle_signals", "idle_orders", "idle_exits", "idle_router", "details", "missing"}


def feed(sender: Producers) -> None:
    sender.send(SignalGenerated(signal_id="s1", symbol="BTCUSDT", direction="LONG", score=0.8))
    sender.send(EntryVetoed(symbol="BTCUSDT", reason="max_open_positions"))
    sender.send(EntryVetoed(symbol="ETHUSDT", reason="max_open_positions"))
    sender.send_and_wait(SubmitOrder(mode="SIM", account="paper", intent_id="i1", symbol="SOLUSDT", side="BUY",
                                     qty=1.0), timeout=15)
    sender.send(RouterActed(intent_id="i1", symbol="SOLUSDT", action="route_start"))
    sender.send(ExitScanCompleted(open_positions_count=3, tp_sl_registered_count=2, tp_sl_missing_count=1,
                               underwater_without_tp_sl_count=1, tp_sl_coverage_pct=2 / 3,
                               ledger_registry_mismatch=True, missing_symbols=["SOLUSDT"]))
    assert sender.flush(15)


def test_runtime_diagnostics_shape_router_activity_and_coverage(diag: Instance, sender: Producers) -> None:
    feed(sender)
    block = wait_diagnostics(diag, lambda b: b["veto_counters"]["total_vetoes"] == 2
                             and b["exit_pipeline"]["last_router_event_ts"] is not None, "the fed messages counted")
    # Seed 004 §4.1 / §5.4: the block and every field it names.
    assert {"veto_counters", "exit_pipeline", "liveness"} <= set(block)
    assert set(block["veto_counters"]) >= SEED_VETO_KEYS
    assert set(block["exit_pipeline"]) >= SEED_EXIT_KEYS
    assert set(block["liveness"]) >= SEED_LIVENESS_KEYS
    vc, ep, live = block["veto_counters"], block["exit_pipeline"], block["liveness"]
    assert vc["by_reason"] == {"max_open_positions": 2}
    assert (vc["total_signals"], vc["total_orders"]) == (1, 1)
    assert ep["tp_sl_coverage_pct"] == 2 / 3 and ep["ledger_registry_mismatch"] is True
    assert ep["tp_sl_missing_count"] == 1 and ep["underwater_without_tp_sl_count"] == 1
    assert all(isinstance(v, float) and v >= 0 for v in live["details"].values())
    assert isinstance(live["missing"], dict)
    # no exit trigger yet: exits are missing, so idle, with threshold + 1 (seed 004 §1.2)
    assert live["missing"]["exits"] is True and live["idle_exits"] is True and live["details"]["exits"] == 3601.0
    assert live["missing"]["router"] is False and live["idle_router"] is False
    # supervisord is not running here: unknown, never healthy
    assert block["supervisor"]["reachable"] is False
    assert all(a["supervisor_state"] is None for a in block["actors"].values())
    assert diag.run_cli("validate").returncode == 0

    # idle_router follows the threshold: idle once the router is silent longer than it ...
    block = wait_diagnostics(diag, lambda b: b["liveness"]["idle_router"], "idle_router after router silence",
                             timeout=ROUTER_IDLE_S + 20)
    assert block["liveness"]["details"]["router"] > ROUTER_IDLE_S
    metrics = metrics_text(diag, "diagnostics")
    assert 'v7_diag_idle{kind="router"} 1.0' in metrics
    assert "v7_diag_tp_sl_coverage_ratio 0.666" in metrics
    assert "v7_diag_ledger_registry_mismatch 1.0" in metrics
    assert 'v7_diag_heartbeat_age_seconds{actor="diagnostics"}' in metrics
    assert 'v7_diag_idle_seconds{kind="exits"} 3601.0' in metrics
    assert "v7_diag_supervisor_reachable 0.0" in metrics
    # ... and healthy again with the next router event.
    sender.send(RouterActed(intent_id="i1", symbol="SOLUSDT", action="complete"))
    wait_diagnostics(diag, lambda b: not b["liveness"]["idle_router"], "idle_router cleared by a router event")


def test_restart_continues_counts_and_keeps_timestamps(diag: Instance, sender: Producers) -> None:
    feed(sender)
    before = wait_diagnostics(diag, lambda b: b["veto_counters"]["total_vetoes"] == 2
                              and b["exit_pipeline"]["last_exit_scan_ts"] is not None, "first counts")
    # SIGKILL: no farewell publication; the counts must come back from the hub snapshot.
    diag.kill("diagnostics", signal.SIGKILL)
    pid = diag.start("diagnostics").pid
    wait_diagnostics(diag, lambda b: b["actors"]["diagnostics"]["pid"] == pid, "the restarted diagnostics publishing")
    sender.send(EntryVetoed(symbol="BTCUSDT", reason="stale_nav"))
    after = wait_diagnostics(diag, lambda b: b["veto_counters"]["total_vetoes"] == 3, "counts continued after restart")
    assert after["veto_counters"]["by_reason"] == {"max_open_positions": 2, "stale_nav": 1}
    assert after["veto_counters"]["total_signals"] == 1
    assert after["veto_counters"]["last_signal_ts"] == before["veto_counters"]["last_signal_ts"]
    assert after["exit_pipeline"]["last_router_event_ts"] == before["exit_pipeline"]["last_router_event_ts"]
    assert after["liveness"]["missing"]["signals"] is False  # known timestamps never turn into "never seen"
    assert "restored counters from the hub snapshot" in diag.logs("diagnostics")


def test_stopped_actor_is_flagged_within_the_configured_time_and_cleared_after_sigcont(diag: Instance) -> None:
    # The dashboard is a real actor that heartbeats; diagnostics watches it.
    diag.start("dashboard")
    block = wait_diagnostics(diag, lambda b: b["actors"].get("dashboard", {}).get("stale") is False,
                             "the dashboard heartbeating")
    threshold = block["actors"]["dashboard"]["threshold_s"]
    assert threshold == 3.0  # 1 s heartbeat interval x 3 missed intervals (config)
    proc = diag.procs["dashboard"]
    stopped_at = time.monotonic()
    proc.send_signal(signal.SIGSTOP)
    try:
        block = wait_diagnostics(diag, lambda b: b["actors"]["dashboard"]["stale"], "dashboard flagged stale",
                                 timeout=threshold + 20)
        flagged_after = time.monotonic() - stopped_at
        assert "no heartbeat" in block["actors"]["dashboard"]["reason"]
        assert block["actors"]["dashboard"]["age_s"] > threshold
        # the threshold plus one diagnostics loop and one state-writer tick, with room for a busy machine
        assert flagged_after < threshold + 10, flagged_after
        assert 'v7_diag_actor_stale{actor="dashboard"} 1.0' in metrics_text(diag, "diagnostics")
    finally:
        proc.send_signal(signal.SIGCONT)
    wait_diagnostics(diag, lambda b: b["actors"]["dashboard"]["stale"] is False, "dashboard cleared after SIGCONT")


def test_bad_strategy_config_stops_start_up_naming_the_key(diag: Instance) -> None:
    path = diag.home / "strategy_config.json"
    cfg = json.loads(path.read_text())
    cfg["diagnostics"]["liveness"]["max_idle_signals_secs"] = 5
    path.write_text(json.dumps(cfg))
    result = diag.run_cli("run", "diagnostics", timeout=60)
    assert result.returncode == 2
    assert "diagnostics.liveness.max_idle_signals_secs" in result.stderr and "unknown key" in result.stderr


def test_nothing_is_published_before_the_first_sync(diag: Instance) -> None:
    # Diagnostics started before any message: its first document must not be all zeros over a real one;
    # with an empty hub it publishes the empty (but complete) block once synced.
    block = wait_diagnostics(diag, lambda b: "diagnostics" in b["actors"], "first publication")
    assert block["veto_counters"]["total_vetoes"] == 0
    assert all(block["liveness"]["missing"].values())
    assert read_diagnostics(diag) is not None
