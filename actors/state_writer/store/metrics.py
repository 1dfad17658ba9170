"""Prometheus metrics of the positions store (names prefixed `v7_store_`), declared once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class StoreMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.transactions = Counter(
            "v7_store_transactions", "Database transactions committed (one per batch that changed the store).",
            registry=registry)
        self.checkpoints = Counter(
            "v7_store_checkpoints", "Seq-only commits: batches the store ignored, recorded so the journal can shrink.",
            registry=registry)
        self.commit_seconds = Histogram(
            "v7_store_commit_seconds", "Time to apply and commit one batch to the database.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0), registry=registry)
        self.failures = Counter(
            "v7_store_failures", "Batches the database refused (the writer stops without ACKing).",
            registry=registry)
        self.fills = Counter(
            "v7_store_fills", "Fills seen, by result (applied, duplicate, anomaly).", ["result"], registry=registry)
        self.events = Counter(
            "v7_store_position_events", "Audit events written, by kind.", ["kind"], registry=registry)
        self.trades_closed = Counter(
            "v7_store_trades_closed", "Trades closed, by mode and account.", ["mode", "account"], registry=registry)
        self.open_positions = Gauge(
            "v7_store_open_positions", "Open positions in the store, by mode and account.", ["mode", "account"],
            registry=registry)
        self.extremes_writes = Counter(
            "v7_store_extremes_writes", "Rows written only to bring trade extremes and marks up to date.",
            registry=registry)
        self.reconcile_reports = Counter(
            "v7_store_reconcile_reports", "Reconciliation reports, by result (compared, exchange_unavailable).",
            ["result"], registry=registry)
        self.reconcile_mismatches = Counter(
            "v7_store_reconcile_mismatches", "Store/exchange mismatches found (new or changed), by kind and policy.",
            ["kind", "policy"], registry=registry)
        self.reconcile_open = Gauge(
            "v7_store_reconcile_open_issues", "Unresolved store/exchange mismatches.", registry=registry)
        self.applied_seq = Gauge(
            "v7_store_applied_seq", "Last seq reflected in the database.", registry=registry)
