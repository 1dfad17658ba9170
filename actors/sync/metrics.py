"""Sync metrics (`v7_sync_*`), declared once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.nav = Gauge("v7_sync_nav", "NAV: wallet balance + unrealized PnL (quote).", registry=registry)
        self.peak = Gauge("v7_sync_peak_nav", "Peak NAV (never moved by an anomalous reading).", registry=registry)
        self.drawdown = Gauge("v7_sync_drawdown_pct", "Drawdown from peak NAV (fraction).", registry=registry)
        self.dd_state = Gauge("v7_sync_dd_state", "Drawdown state: 0 NORMAL, 1 CAUTION, 2 DEFENSIVE.",
                              registry=registry)
        self.anomalies = Counter("v7_sync_nav_anomalies", "NAV readings rejected by the anomaly guard.",
                                 ["reason"], registry=registry)
        self.peak_resets = Counter("v7_sync_peak_resets", "Operator peak NAV resets applied (nav_peak_reset).",
                                   registry=registry)
        self.samples = Counter("v7_sync_nav_samples", "NAV samples published.", registry=registry)
        self.exchange_errors = Counter("v7_sync_exchange_unavailable", "Samples skipped: exchange not answering.",
                                       registry=registry)
        self.mirror_writes = Counter("v7_sync_mirror_writes", "Mirror files written.", registry=registry)
        self.mirror_errors = Gauge("v7_sync_mirror_errors", "Mirror write failures so far.", registry=registry)
