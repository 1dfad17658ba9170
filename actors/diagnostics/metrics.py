"""Prometheus view of the latest runtime diagnostics (names prefixed `v7_diag_`), declared once.

A collector reads the last computed block at scrape time, so actor labels appear and vanish
with the actors, and the figures are exactly those in runtime_diagnostics.json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.diagnostics.liveness import KINDS
from bus.messages import RuntimeDiagnosticsBlock


class DiagnosticsCollector(Collector):
    def __init__(self, latest: Callable[[], RuntimeDiagnosticsBlock | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterable[Metric]:
        block = self._latest()
        if block is None:
            return
        yield from self._liveness(block)
        yield from self._exits(block)
        yield from self._vetoes(block)
        yield from self._actors(block)

    def _liveness(self, block: RuntimeDiagnosticsBlock) -> Iterable[Metric]:
        live = block.liveness
        idle = GaugeMetricFamily("v7_diag_idle", "1 when the kind is idle (seed 004 liveness; missing counts).",
                                 labels=["kind"])
        idle_s = GaugeMetricFamily("v7_diag_idle_seconds",
                                   "Seconds since the kind's last event (threshold + 1 when unknown).",
                                   labels=["kind"])
        missing = GaugeMetricFamily("v7_diag_timestamp_missing", "1 when the kind has never been seen.",
                                    labels=["kind"])
        for kind, (_threshold, flag) in KINDS.items():
            idle.add_metric([kind], 1.0 if getattr(live, flag) else 0.0)
            if kind in live.details:
                idle_s.add_metric([kind], live.details[kind])
            if kind in live.missing:
                missing.add_metric([kind], 1.0 if live.missing[kind] else 0.0)
        yield idle
        yield idle_s
        yield missing

    def _exits(self, block: RuntimeDiagnosticsBlock) -> Iterable[Metric]:
        ep = block.exit_pipeline
        for name, help_text, value in (
            ("v7_diag_tp_sl_coverage_ratio", "Share of open positions with TP/SL registered (0..1).",
             ep.tp_sl_coverage_pct),
            ("v7_diag_ledger_registry_mismatch", "1 when an open position has no TP/SL in the registry.",
             1.0 if ep.ledger_registry_mismatch else 0.0),
            ("v7_diag_open_positions", "Open positions at the last exit scan.", ep.open_positions_count),
            ("v7_diag_tp_sl_missing", "Open positions without TP/SL at the last exit scan.", ep.tp_sl_missing_count),
            ("v7_diag_underwater_without_tp_sl", "Losing positions without TP/SL at the last exit scan.",
             ep.underwater_without_tp_sl_count),
        ):
            yield GaugeMetricFamily(name, help_text, value=float(value))

    def _vetoes(self, block: RuntimeDiagnosticsBlock) -> Iterable[Metric]:
        vc = block.veto_counters
        # Gauges, not counters: the values carry over restarts (restored from the hub snapshot).
        by_reason = GaugeMetricFamily("v7_diag_vetoes", "Risk vetoes by reason since counting began.",
                                      labels=["reason"])
        for reason, count in sorted(vc.by_reason.items()):
            by_reason.add_metric([reason], float(count))
        yield by_reason
        yield GaugeMetricFamily("v7_diag_signals", "Signals seen since counting began.", value=vc.total_signals)
        yield GaugeMetricFamily("v7_diag_orders", "Order intents seen since counting began.", value=vc.total_orders)

    def _actors(self, block: RuntimeDiagnosticsBlock) -> Iterable[Metric]:
        age = GaugeMetricFamily("v7_diag_heartbeat_age_seconds", "Seconds since the actor's last heartbeat.",
                                labels=["actor"])
        stale = GaugeMetricFamily("v7_diag_actor_stale", "1 when the actor is flagged (silent, stopped, crash loop).",
                                  labels=["actor"])
        crash = GaugeMetricFamily("v7_diag_actor_crash_loop", "1 when supervisord reports BACKOFF or FATAL.",
                                  labels=["actor"])
        for name, actor in block.actors.items():
            if actor.age_s is not None:
                age.add_metric([name], actor.age_s)
            stale.add_metric([name], 1.0 if actor.stale else 0.0)
            if actor.supervisor_state is not None:
                crash.add_metric([name], 1.0 if actor.crash_loop else 0.0)
        yield age
        yield stale
        yield crash
        yield GaugeMetricFamily("v7_diag_supervisor_reachable",
                                "1 when supervisord answered; 0 means program states are unknown.",
                                value=1.0 if block.supervisor.reachable else 0.0)
