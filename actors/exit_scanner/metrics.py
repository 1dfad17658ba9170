"""Exit scanner metrics (`v7_exit_*`), declared once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ExitMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.triggers = Counter("v7_exit_triggers", "Exit triggers sent, by reason.", ["reason"], registry=registry)
        self.scans = Counter("v7_exit_scans", "Exit scans completed.", registry=registry)
        self.open_positions = Gauge("v7_exit_open_positions", "Open positions seen by the last scan.",
                                    registry=registry)
        self.coverage = Gauge("v7_exit_tp_sl_coverage", "Fraction of open positions with TP and SL (0-1).",
                              registry=registry)
        self.missing = Gauge("v7_exit_tp_sl_missing", "Open positions without TP/SL.", registry=registry)
        self.underwater_unprotected = Gauge("v7_exit_underwater_without_tp_sl",
                                            "Losing open positions without TP/SL.", registry=registry)
        self.mismatch = Gauge("v7_exit_ledger_registry_mismatch",
                              "1 when an open position has no TP/SL (seed 004: tp_sl_missing_count > 0).",
                              registry=registry)
        self.disagreements = Gauge("v7_exit_ledger_disagreements",
                                   "Open positions whose ledger entry disagrees with the registry.", registry=registry)
