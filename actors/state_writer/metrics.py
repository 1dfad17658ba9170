"""Prometheus metrics of the state writer, declared once (names prefixed `v7_writer_`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class WriterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "v7_writer_messages", "Messages committed, by type.", ["type"], registry=registry)
        self.nacks = Counter(
            "v7_writer_nacks", "Messages refused, by type and reason code.", ["type", "code"], registry=registry)
        self.duplicates = Counter(
            "v7_writer_duplicates", "Resent messages recognised as already committed.", registry=registry)
        self.journal_fsync = Histogram(
            "v7_writer_journal_fsync_seconds", "Journal group-commit write+fsync latency.",
            buckets=_FAST, registry=registry)
        self.batch_size = Histogram(
            "v7_writer_batch_messages", "Messages per group commit.",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500), registry=registry)
        self.journal_errors = Counter(
            "v7_writer_journal_errors", "Failed journal appends (nothing ACKed), by errno name.",
            ["reason"], registry=registry)
        self.hook_errors = Counter(
            "v7_writer_hook_errors", "Commit-hook (positions store) failures and failed catch-ups, nothing "
            "ACKed meanwhile, by reason (SQLITE_FULL, SQLITE_READONLY, an errno name, or the error type).",
            ["reason"], registry=registry)
        self.file_write = Histogram(
            "v7_writer_file_write_seconds", "Atomic state-file write latency, by file.", ["file"],
            buckets=_FAST, registry=registry)
        self.file_errors = Counter(
            "v7_writer_file_errors", "Failed state-file writes (old file kept), by file.", ["file"],
            registry=registry)
        self.out_of_order = Counter(
            "v7_writer_out_of_order", "Messages answered 'out of order' (an older one was missing; resent).",
            registry=registry)
        self.seq = Gauge("v7_writer_seq", "Last committed seq.", registry=registry)
        self.streams = Gauge(
            "v7_writer_streams", "Sender incarnations tracked for de-duplication.", registry=registry)
        self.files_failing = Gauge(
            "v7_writer_files_failing", "1 while state files cannot be written (old files stay; retried).",
            registry=registry)
        self.journal_truncated = Gauge(
            "v7_writer_journal_truncated_bytes", "Torn-tail bytes cut from the journal at start-up.",
            registry=registry)
        self.subscriptions = Counter(
            "v7_writer_subscriptions", "Subscriptions received on the updates socket.", registry=registry)
        self.ingest_depth = Gauge(
            "v7_writer_ingest_depth", "Frames taken in the last ingest drain (backlog indicator).",
            registry=registry)
        self.degraded = Gauge(
            "v7_writer_degraded", "1 while the writer cannot make messages durable (not ACKing): journal or "
            "commit hook (positions store) refusing writes.",
            registry=registry)
        self.journal_bytes = Gauge("v7_writer_journal_bytes", "Bytes in journal segments.", registry=registry)
        self.snapshots = Counter("v7_writer_snapshots_written", "Snapshots written.", registry=registry)
        self.snapshot_requests = Counter(
            "v7_writer_snapshot_requests", "Snapshot requests served.", registry=registry)
        self.snapshot_errors = Counter(
            "v7_writer_snapshot_errors", "Snapshot and status requests answered with an error, by code.",
            ["code"], registry=registry)
        self.published = Counter("v7_writer_published", "Updates published.", registry=registry)
        self.views_published = Counter(
            "v7_writer_views_published", "Store views published ($view:<key> frames) because they changed, by key.",
            ["key"], registry=registry)
        self.view_errors = Counter(
            "v7_writer_view_errors", "Failures building the changed views or a hook's tick (logged; the hub "
            "keeps serving).", registry=registry)
        self.ingest_disconnects = Counter(
            "v7_writer_ingest_disconnects",
            "Ingest connections closed: peers that went away, and peers cut off by libzmq for a frame over "
            "the hard cap (4x bus.max_frame_bytes).", registry=registry)
        self.ingest_handshake_failures = Counter(
            "v7_writer_ingest_handshake_failures",
            "Ingest connections refused before ZMTP was established (not ZeroMQ, bad greeting, CURVE refused).",
            registry=registry)
        self.unroutable = Counter(
            "v7_writer_unroutable_replies", "Replies whose peer had gone.", registry=registry)
        self.recovery_seconds = Gauge(
            "v7_writer_recovery_seconds", "Time spent in start-up recovery.", registry=registry)
        self.replayed = Gauge(
            "v7_writer_replayed_messages", "Journal records replayed at start-up.", registry=registry)
