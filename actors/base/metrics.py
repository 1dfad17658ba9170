"""Metrics every actor exports (names prefixed `v7_actor_` / `v7_sender_`), declared once."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bus.sender import Sender
from bus.subscriber import Subscriber


class ActorMetrics:
    def __init__(self, registry: CollectorRegistry, actor: str) -> None:
        self.loop_seconds = Histogram(
            "v7_actor_loop_seconds", "Duration of one actor loop iteration.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=registry)
        self.loops = Counter("v7_actor_loops", "Loop iterations completed.", registry=registry)
        self.errors = Counter("v7_actor_loop_errors", "Loop iterations that raised (logged, loop continues).",
                              ["kind"], registry=registry)
        self.up = Gauge("v7_actor_up", "1 while the actor's loop runs.", ["actor"], registry=registry)
        self.up.labels(actor).set(0)
        self.hub_connected = Gauge("v7_actor_hub_synced", "1 while the actor's subscriber is in sync with the hub.",
                                   registry=registry)
        self.hub_unreachable = Gauge(
            "v7_actor_hub_unreachable", "1 while the hub has been out of reach (no updates, or no connection) "
            "for longer than the subscriber's silence limit.", registry=registry)
        self.degraded = Gauge("v7_actor_degraded", "1 while the actor's heartbeats report status degraded.",
                              registry=registry)

    def watch_sender(self, registry: CollectorRegistry, sender: Sender) -> None:
        registry.register(_SenderCollector(sender))

    def watch_subscriber(self, registry: CollectorRegistry, subscriber: Subscriber) -> None:
        registry.register(_SubscriberCollector(subscriber))


class _SenderCollector(Collector):
    """Reads the sender's own counters at scrape time (the sender stays free of Prometheus)."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def collect(self) -> Iterable[Metric]:
        stats = self._sender.stats
        yield GaugeMetricFamily("v7_sender_outbox_depth", "Unacknowledged messages in this actor's outbox.",
                                value=self._sender.outbox_depth)
        yield GaugeMetricFamily("v7_sender_connected", "1 while the sender has a connection to the hub's ingest.",
                                value=1 if self._sender.connected else 0)
        for name, help_text, value in (
            ("v7_sender_sent", "Frames sent to the hub (including resends).", stats.sent),
            ("v7_sender_acked", "Messages ACKed by the hub.", stats.acked),
            ("v7_sender_duplicates", "Resends the hub recognised as already committed.", stats.duplicates),
            ("v7_sender_nacked", "Messages NACKed by the hub.", stats.nacked),
            ("v7_sender_resent", "Frames resent after a timeout, reconnect or out-of-order answer.", stats.resent),
            ("v7_sender_out_of_order", "'Out of order' answers from the hub (each leads to a rewind).",
             stats.out_of_order),
            ("v7_sender_rewinds", "Times the sender restarted delivery from its oldest message.", stats.rewinds),
            ("v7_sender_io_errors", "Sender I/O loop failures (logged; connection reopened).", stats.io_errors),
            ("v7_sender_handshake_failures", "Failed handshakes with the hub (CURVE keys refused?).",
             stats.handshake_failures),
            ("v7_sender_dropped_telemetry", "Telemetry dropped because the outbox was half full or more.",
             stats.dropped_telemetry),
        ):
            yield CounterMetricFamily(name, help_text, value=value)


class _SubscriberCollector(Collector):
    def __init__(self, subscriber: Subscriber) -> None:
        self._sub = subscriber

    def collect(self) -> Iterable[Metric]:
        sub = self._sub
        yield GaugeMetricFamily("v7_subscriber_seq", "Last hub seq this actor applied.", value=sub.seq)
        for name, help_text, value in (
            ("v7_subscriber_snapshots", "Snapshots taken (join, gap, hub restart).", sub.snapshots),
            ("v7_subscriber_gaps", "Times the update stream was out of step and re-snapshotted.", sub.gaps),
            ("v7_subscriber_reconnects", "Reconnects after the hub went silent.", sub.reconnects),
            ("v7_subscriber_undecodable", "Updates this actor could not decode (newer schema?).", sub.undecodable),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
