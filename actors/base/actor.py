"""The actor base: one process, one loop, heartbeats, metrics, a sender, optionally a subscriber.

Subclasses set `name`, `default_loop_s`, and implement `step()` (one loop iteration). If
`subscribe_keys`/`subscribe_topics` is set, the base keeps a `Subscriber` in sync and
calls `on_update(update)` for every committed message between steps, and `on_view(key, value)`
for every change of a store view among `subscribe_keys`. SIGTERM/SIGINT end
the loop; `teardown()` runs and the outbox is flushed before the process exits.

A `step()` that raises is logged and counted, and the loop goes on: one bad iteration must
not take the process down (supervisord restarts it if it does die).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import ClassVar

from prometheus_client import CollectorRegistry, start_http_server

from actors.base.gc_tuning import tune_gc
from actors.base.metrics import ActorMetrics
from bus.messages import Heartbeat, Message, utc_now
from bus.sender import Sender
from bus.subscriber import Subscriber, Update, ViewChanged
from config.settings import Settings

log = logging.getLogger(__name__)


class Actor(ABC):
    name: ClassVar[str] = "actor"
    default_loop_s: ClassVar[float] = 1.0
    subscribe_keys: ClassVar[Iterable[str] | None] = None
    subscribe_topics: ClassVar[Iterable[str] | None] = None
    wants_updates: ClassVar[bool] = False

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = ActorMetrics(self.registry, self.name)
        self.sender = Sender(settings, self.name)
        self.metrics.watch_sender(self.registry, self.sender)
        self.subscriber: Subscriber | None = None
        if self.wants_updates:
            self.subscriber = Subscriber(settings, keys=self.subscribe_keys, topics=self.subscribe_topics)
            self.metrics.watch_subscriber(self.registry, self.subscriber)
        self.loop_s = settings.loop_interval(self.name, self.default_loop_s)
        self.stop_event = threading.Event()
        self.started_at = utc_now()
        self.loops = 0
        self._serve_metrics = serve_metrics
        self._next_heartbeat = 0.0
        self.status: str = "starting"
        self.status_detail = ""

    # --- to override ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Called once before the first step (recover state here)."""

    @abstractmethod
    def step(self) -> None:
        """One loop iteration."""

    def on_update(self, update: Update) -> None:
        """Called for every committed message the subscriber delivers."""

    def on_view(self, key: str, value: object) -> None:
        """Called for every change of a store view among `subscribe_keys` (the snapshot's values are
        in `self.subscriber.view(key)` at `on_resync`)."""

    def on_resync(self) -> None:
        """Called after the subscriber took a fresh snapshot (documents replaced)."""

    def teardown(self) -> None:
        """Called once after the loop ends, before the outbox is flushed."""

    # --- helpers -------------------------------------------------------------------------------

    def publish(self, msg: Message) -> int | None:
        """Non-blocking send (telemetry may drop when the outbox is full; durable never does)."""
        return self.sender.send(msg)

    def publish_durable(self, msg: Message, timeout: float | None = None) -> int:
        """Block until the hub has journaled `msg`; returns its seq."""
        return self.sender.send_and_wait(msg, timeout=timeout)

    def heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_heartbeat:
            return
        interval = self.settings.bus.heartbeat_s * 2
        self._next_heartbeat = now + interval
        self.publish(Heartbeat(
            actor=self.name, pid=os.getpid(), started_at=self.started_at, interval_s=interval,
            loops=self.loops, status=self.status, detail=self.status_detail[:2000],  # type: ignore[arg-type]
        ))

    def _pump_updates(self, timeout_s: float) -> None:
        """Wait up to `timeout_s`, delivering updates as they come."""
        deadline = time.monotonic() + timeout_s
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if self.subscriber is None:
                self.stop_event.wait(max(0.0, left))
                return
            snapshots_before = self.subscriber.snapshots
            updates = self.subscriber.poll(max(0.0, min(left, 0.25)))
            self.metrics.hub_connected.set(1 if self.subscriber.hub_alive else 0)
            if self.subscriber.snapshots != snapshots_before:
                self._guarded(self.on_resync, "resync")
            for item in updates:
                if isinstance(item, ViewChanged):
                    self._guarded(lambda v=item: self.on_view(v.key, v.value), "view")
                else:
                    self._guarded(lambda u=item: self.on_update(u), "update")
            self.heartbeat()
            if left <= 0:
                return

    def _guarded(self, fn, kind: str) -> None:
        try:
            fn()
        except Exception:
            self.metrics.errors.labels(kind).inc()
            log.exception("%s: %s handler failed; continuing", self.name, kind)

    # --- lifecycle -----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, _frame: object) -> None:
            log.info("%s: signal %d, stopping", self.name, signum)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run(self) -> int:
        if self._serve_metrics:
            start_http_server(self.settings.metrics_port(self.name), addr=self.settings.metrics_host,
                              registry=self.registry)
        self.metrics.up.labels(self.name).set(1)
        self.heartbeat(force=True)
        try:
            self.setup()
            tune_gc()
            self.status = "running"
            self.heartbeat(force=True)
            while not self.stop_event.is_set():
                started = time.monotonic()
                self._guarded(self.step, "step")
                self.loops += 1
                self.metrics.loops.inc()
                self.metrics.loop_seconds.observe(time.monotonic() - started)
                self.heartbeat()
                self._pump_updates(max(0.0, started + self.loop_s - time.monotonic()))
        finally:
            self.status = "stopping"
            self.metrics.up.labels(self.name).set(0)
            try:
                self.teardown()
            finally:
                self.heartbeat(force=True)
                self.sender.close(flush_timeout=5.0)
                if self.subscriber is not None:
                    self.subscriber.close()
        return 0
