"""The actor base: one process, one event loop, heartbeats, metrics, a sender, and its inputs.

An actor reacts to events when they arrive, never on the next tick of a polling loop:

- committed messages from the hub (`subscribe_keys` / `subscribe_topics`): `on_update`, the
  store views it keeps (`on_view`), and `on_resync` after every snapshot;
- the exchange gateway's streams (`exchange_streams`): `on_market`, `on_account`, and
  `on_exchange_resync` with the snapshot a consumer starts from;
- timers, for what is genuinely periodic (heartbeats, TTL checks, reprices, publishing a
  document, reconciliation): `every(seconds, fn)` and one-shot `at(when, fn)`.

The loop waits on its sockets with ZeroMQ's poll until the next timer is due: no busy polling,
and an event is handled as soon as it is read. A handler that raises is logged and counted and
the loop goes on (supervisord restarts the process if it dies). SIGTERM/SIGINT end the loop;
`teardown()` runs and the outbox is flushed before the process exits.

Gates every trading actor needs, in one place: `ready` (the first hub snapshot has been
taken), `stream_ready` (the exchange streams are in sync), and `degrade(reason)` /
`recover()`, which set the status heartbeats carry and log each change once.

An actor that was once in touch with the hub and has lost it (subscriber silent past its
limit, or, without a subscriber, no connection for as long) reports itself degraded ("hub
unreachable for N s") in its heartbeats and in `v7_actor_hub_unreachable` /
`v7_actor_degraded`, and goes back to its own status when the hub is back. Its heartbeats
queue meanwhile, so the journal shows afterwards when each actor lost the hub.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, ClassVar

import zmq
from prometheus_client import CollectorRegistry, start_http_server

from actors.base.gc_tuning import tune_gc
from actors.base.metrics import ActorMetrics
from bus.messages import Heartbeat, Message, Scope, utc_now
from bus.sender import Sender
from bus.subscriber import Subscriber, Update, ViewChanged
from config.settings import Settings

log = logging.getLogger(__name__)

_MAX_WAIT_S = 0.5  # the loop looks at its stop flag at least this often (a signal does not wake zmq.poll)
_DURABLE_SLICE_S = 0.25  # a blocking durable publish looks at the hub's reachability this often


class Timer:
    __slots__ = ("every", "fn", "name")

    def __init__(self, every: float | None, fn: Callable[[], None], name: str) -> None:
        self.every = every  # None: one-shot
        self.fn = fn
        self.name = name


class Actor:
    name: ClassVar[str] = "actor"
    default_loop_s: ClassVar[float] = 1.0
    subscribe_keys: ClassVar[Iterable[str] | None] = None
    subscribe_topics: ClassVar[Iterable[str] | None] = None
    wants_updates: ClassVar[bool] = False
    exchange_streams: ClassVar[tuple[str, ...]] = ()  # "market" and/or "account"

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.settings = settings
        # Every state document this actor publishes names this scope.
        self.scope = Scope(mode=settings.mode, network=settings.network, account=settings.account)  # type: ignore[arg-type]
        self.registry = CollectorRegistry()
        self.metrics = ActorMetrics(self.registry, self.name)
        self.sender = Sender(settings, self.name)
        self.metrics.watch_sender(self.registry, self.sender)
        self.subscriber: Subscriber | None = None
        if self.wants_updates:
            self.subscriber = Subscriber(settings, keys=self.subscribe_keys, topics=self.subscribe_topics)
            self.metrics.watch_subscriber(self.registry, self.subscriber)
        self.stream: Any = None  # ExchangeStream, created by open_exchange_streams
        self.loop_s = settings.loop_interval(self.name, self.default_loop_s)
        self.stop_event = threading.Event()
        self.started_at = utc_now()
        self.loops = 0
        self.ready = False
        self.status: str = "starting"
        self.status_detail = ""
        self._serve_metrics = serve_metrics
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_ids = itertools.count()
        self._poller = zmq.Poller()
        self._polled: dict[str, zmq.Socket | None] = {"hub": None, "stream": None}
        self._hub_seen = False  # in touch with the hub at least once (start-up is not an outage)
        self._hub_lost_at: float | None = None  # monotonic time it was last seen reachable
        self.hub_unreachable_s = 0.0  # > 0 while the hub is out of reach past the limit

    # --- to override ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Called once before the loop starts (register timers, recover state here)."""

    def on_update(self, update: Update) -> None:
        """A committed message of a subscribed topic."""

    def on_view(self, key: str, value: Any) -> None:
        """A store view this actor keeps changed (published by the hub on the commit that changed it)."""

    def on_resync(self) -> None:
        """The subscriber took a fresh snapshot (documents and views replaced)."""

    def on_market(self, event: Any) -> None:
        """A market event from the exchange streams (BookTicked, BarClosed)."""

    def on_account(self, event: Any) -> None:
        """An account event from the exchange streams (OrderChanged, TradeExecuted, ...)."""

    def on_exchange_resync(self, snapshot: Any, reason: str) -> None:
        """The exchange streams were (re)joined: replace what you hold with `snapshot`."""

    def teardown(self) -> None:
        """Called once after the loop ends, before the outbox is flushed."""

    # --- timers --------------------------------------------------------------------------------

    def every(self, seconds: float, fn: Callable[[], None], name: str | None = None, *, now: bool = False) -> None:
        """Run `fn` every `seconds` (first run now, or after one interval)."""
        first = time.monotonic() + (0.0 if now else seconds)
        heapq.heappush(self._timers, (first, next(self._timer_ids), Timer(seconds, fn, name or fn.__name__)))

    def at(self, when: float, fn: Callable[[], None], name: str | None = None) -> None:
        """Run `fn` once at monotonic time `when`."""
        heapq.heappush(self._timers, (when, next(self._timer_ids), Timer(None, fn, name or fn.__name__)))

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            due, _id, timer = heapq.heappop(self._timers)
            if timer.every is not None:
                # Keep the cadence, but never queue up missed runs after a stall.
                heapq.heappush(self._timers, (max(due + timer.every, now), next(self._timer_ids), timer))
            self._guarded(timer.fn, f"timer:{timer.name}")

    # --- gates ---------------------------------------------------------------------------------

    @property
    def stream_ready(self) -> bool:
        return self.stream is not None and self.stream.synced

    def degrade(self, reason: str) -> None:
        """Report (once per change) that the actor cannot do its job right now, and why."""
        reason = reason[:500]
        if self.status != "degraded" or self.status_detail != reason:
            log.warning("%s degraded: %s", self.name, reason)
        self.status, self.status_detail = "degraded", reason

    def recover(self) -> None:
        if self.status == "degraded":
            log.info("%s recovered (was: %s)", self.name, self.status_detail)
        self.status, self.status_detail = "running", ""

    # --- helpers -------------------------------------------------------------------------------

    def open_exchange_streams(self, rpc: Any) -> None:
        """Consume the exchange gateway's streams (`exchange_streams`), resyncing through `rpc`."""
        from exchange.stream_client import ExchangeStream

        self.stream = ExchangeStream(self.settings, rpc, streams=self.exchange_streams)
        self.every(self.settings.bus.heartbeat_s, self._check_stream, "exchange_stream_check")

    def publish(self, msg: Message) -> int | None:
        """Non-blocking send (telemetry may drop when the outbox is full; durable never does)."""
        return self.sender.send(msg)

    def publish_durable(self, msg: Message, timeout: float | None = None) -> int:
        """Block until the hub has journaled `msg`; returns its seq.

        Raises TimeoutError (the message stays queued and is delivered later) after `timeout`,
        or sooner once the hub is out of reach: the sender has no connection (its I/O thread
        sees a dead TCP peer within `bus.tcp_heartbeat_timeout_s`), or the actor already
        reports the hub unreachable. Waiting out the whole timeout on a cut link would freeze
        this actor's loop (exchange streams, timers, heartbeats) for it. The subscriber is not
        asked here: nobody polls it while the loop waits, so it would call any wait a silence.
        """
        timeout = self.settings.sender.ack_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        future = self.sender.submit(msg, wait_room_s=timeout)
        while True:
            left = deadline - time.monotonic()
            try:
                return future.result(timeout=max(0.0, min(left, _DURABLE_SLICE_S)))
            except FutureTimeout:
                if left <= _DURABLE_SLICE_S:
                    raise TimeoutError(f"no ACK for {msg.TYPE} within {timeout:.1f}s (still queued)") from None
                if self._hub_seen and (not self.sender.connected or self.hub_unreachable_s > 0):
                    raise TimeoutError(f"no ACK for {msg.TYPE}: the hub is out of reach (still queued)") from None

    def _hub_in_reach(self) -> bool:
        if not self.sender.connected:
            return False
        return self.subscriber is None or self.subscriber.hub_alive

    def reported_status(self) -> tuple[str, str]:
        """The status and detail heartbeats carry: the actor's own, or degraded while the hub is out of reach."""
        if self.hub_unreachable_s > 0 and self.status == "running":
            return "degraded", f"hub unreachable for {self.hub_unreachable_s:.0f}s"
        return self.status, self.status_detail

    def heartbeat(self) -> None:
        status, detail = self.reported_status()
        self.metrics.degraded.set(1 if status == "degraded" else 0)
        self.publish(Heartbeat(
            actor=self.name, pid=os.getpid(), started_at=self.started_at, interval_s=self._heartbeat_s,
            loops=self.loops, status=status, detail=detail[:2000],  # type: ignore[arg-type]
        ))

    def _watch_hub(self) -> None:
        """Track whether the hub is in reach; report a loss once it lasts past the subscriber's silence limit."""
        now = time.monotonic()
        reachable = self._hub_in_reach()
        if reachable:
            if self.hub_unreachable_s > 0:
                log.info("%s: hub reachable again after %.1fs", self.name, now - (self._hub_lost_at or now))
            self._hub_seen, self._hub_lost_at, self.hub_unreachable_s = True, now, 0.0
        elif self._hub_seen:
            lost_for = now - (self._hub_lost_at or now)
            limit = self.subscriber.silent_after_s if self.subscriber is not None else 5 * self.settings.bus.heartbeat_s
            if lost_for > limit:
                if self.hub_unreachable_s == 0:
                    log.warning("%s degraded: hub unreachable for %.1fs (%s)", self.name, lost_for,
                                self.settings.ingest_endpoint)
                self.hub_unreachable_s = lost_for
        self.metrics.hub_unreachable.set(1 if self.hub_unreachable_s > 0 else 0)
        self.metrics.degraded.set(1 if self.reported_status()[0] == "degraded" else 0)

    @property
    def _heartbeat_s(self) -> float:
        return self.settings.bus.heartbeat_s * 2

    def _guarded(self, fn: Callable[[], None], kind: str) -> None:
        started = time.monotonic()
        try:
            fn()
        except Exception:
            self.metrics.errors.labels(kind.split(":", 1)[0]).inc()
            log.exception("%s: %s handler failed; continuing", self.name, kind)
        self.loops += 1
        self.metrics.loops.inc()
        self.metrics.loop_seconds.observe(time.monotonic() - started)

    # --- the event loop ------------------------------------------------------------------------

    def _watch(self, hub: zmq.Socket | None, stream: zmq.Socket | None) -> None:
        """Poll the current sockets (a subscriber replaces its socket when its peer goes silent)."""
        if self._polled["hub"] is hub and self._polled["stream"] is stream:
            return
        self._poller = zmq.Poller()
        for sock in (hub, stream):
            if sock is not None:
                self._poller.register(sock, zmq.POLLIN)
        self._polled = {"hub": hub, "stream": stream}

    def _hub_events(self) -> None:
        assert self.subscriber is not None
        snapshots_before = self.subscriber.snapshots
        items = self.subscriber.poll(0.0)
        self.metrics.hub_connected.set(1 if self.subscriber.hub_alive else 0)
        if self.subscriber.snapshots != snapshots_before:
            self._guarded(self._on_hub_resync, "resync")
        for item in items:
            if isinstance(item, ViewChanged):
                self._guarded(lambda i=item: self.on_view(i.key, i.value), "view")
            else:
                self._guarded(lambda u=item: self.on_update(u), "update")

    def _on_hub_resync(self) -> None:
        self.on_resync()
        self.ready = True

    def _stream_events(self) -> None:
        from exchange.stream_client import Resynced

        for item in self.stream.drain():
            if isinstance(item, Resynced):
                self._guarded(lambda i=item: self.on_exchange_resync(i.snapshot, i.reason), "exchange_resync")
            elif item.kind in ("book", "bar"):
                self._guarded(lambda i=item: self.on_market(i), "market")
            else:
                self._guarded(lambda i=item: self.on_account(i), "account")

    def _check_stream(self) -> None:
        from exchange.stream_client import Resynced

        for item in self.stream.check():
            if isinstance(item, Resynced):
                self.on_exchange_resync(item.snapshot, item.reason)

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
        self.heartbeat()
        try:
            self.setup()
            tune_gc()
            self.status = "running"
            self.heartbeat()
            self.every(self._heartbeat_s, self.heartbeat, "heartbeat")
            self.every(self.settings.bus.heartbeat_s, self._watch_hub, "hub_watch", now=True)
            if self.subscriber is not None:
                # The subscriber notices a silent hub (and rejoins) only when asked.
                self.every(self.settings.bus.heartbeat_s, self._hub_events, "hub_check", now=True)
            while not self.stop_event.is_set():
                self._watch(self.subscriber.socket if self.subscriber is not None else None,
                            self.stream.socket if self.stream is not None else None)
                wait = _MAX_WAIT_S
                if self._timers:
                    wait = min(wait, max(0.0, self._timers[0][0] - time.monotonic()))
                if self._polled["hub"] is None and self._polled["stream"] is None:
                    # Nothing to poll (zmq.Poller with no sockets returns at once: a busy loop).
                    self.stop_event.wait(wait)
                    events = {}
                else:
                    events = dict(self._poller.poll(int(wait * 1000) + (1 if wait > 0 else 0)))
                if self.subscriber is not None and self._polled["hub"] in events:
                    self._hub_events()
                if self.stream is not None and self._polled["stream"] in events:
                    self._stream_events()
                self._run_due_timers()
        finally:
            self.status = "stopping"
            self.metrics.up.labels(self.name).set(0)
            try:
                self.teardown()
            finally:
                self.heartbeat()
                self.sender.close(flush_timeout=5.0)
                if self.subscriber is not None:
                    self.subscriber.close()
                if self.stream is not None:
                    self.stream.close()
        return 0
