"""The exchange gateway (program `exchange`): hosts the adapter the mode needs and serves it.

The trading actors reach the exchange only through this process: requests over RPC (a
ROUTER, exchange/rpc.py) and the market and account streams over a PUB
(exchange/stream_server.py). What it hosts (actors/exchange/venue.py): the paper engine on
its simulated market (SIM), the paper engine on the venue's market data (DRY_RUN), or the
venue adapter itself (LIVE).

The paper engine's clock is a timer: every `loop_s.exchange` it steps, matches resting
orders and pushes what happened. Clock, requests and stream snapshots take one lock, so the
engine sees one caller at a time and a snapshot is at a known stream sequence. A venue
adapter pushes from its own stream thread through the same lock; its requests run without
it (the venue serializes them), except the snapshot.

A venue user-data stream that reconnected may have missed account events the adapter then
recovered; the gateway starts a new stream epoch, so every consumer resyncs (and the
executor reconciles positions with the store) after every reconnect.
"""

from __future__ import annotations

import logging
import threading
import time

import zmq

from actors.base import Actor
from actors.exchange.market_clock import market_clock_wait
from actors.exchange.metrics import GatewayMetrics
from actors.exchange.server import RpcServer
from actors.exchange.venue import Hosted, host
from bus.sockets import bind
from config.settings import Settings
from exchange.stream_server import StreamServer
from exchange.streams import BarClosed, BookTicked, StreamSink

log = logging.getLogger(__name__)


class LockedSink:
    """Pushes a venue's events under the gateway's lock (they come from the venue's thread)."""

    def __init__(self, sink: StreamSink, lock: threading.Lock) -> None:
        self._sink = sink
        self._lock = lock

    def market(self, event: object) -> None:
        with self._lock:
            self._sink.market(event)  # type: ignore[arg-type]

    def account(self, event: object) -> None:
        with self._lock:
            self._sink.account(event)  # type: ignore[arg-type]


class VenueFeed:
    """DRY_RUN: the venue's market stream feeds the paper engine's market (its account stream is
    the paper engine's own)."""

    def __init__(self, hosted: Hosted, lock: threading.Lock) -> None:
        assert hosted.market is not None
        self._market = hosted.market
        self._lock = lock

    def market(self, event: object) -> None:
        with self._lock:
            if isinstance(event, BookTicked):
                self._market.on_book(event.top)
            elif isinstance(event, BarClosed):
                self._market.on_bar(event.symbol, event.bar)

    def account(self, event: object) -> None:
        return None


class ExchangeGateway(Actor):
    name = "exchange"

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        # Build (and, LIVE, check the account) first: a bad database, missing keys or an account
        # that is not ready stop start-up before anything is served.
        self.hosted = host(settings)
        super().__init__(settings, serve_metrics=serve_metrics)
        self.loop_s = settings.loop_interval(self.name, settings.paper.tick_s)
        self.lock = threading.Lock()
        self.server: RpcServer | None = None
        self.streams: StreamServer | None = None
        self._user_connects = 0
        self.gateway_metrics = GatewayMetrics(self.registry)
        if self.hosted.engine is not None:
            self.gateway_metrics.watch_engine(self.hosted.engine)
        if self.hosted.venue is not None:
            self.gateway_metrics.watch_venue(self.hosted.venue)

    def setup(self) -> None:
        ctx = zmq.Context.instance()
        self.streams = StreamServer(bind(ctx, zmq.XPUB, self.settings.exchange_stream_endpoint, self.settings))
        self.gateway_metrics.watch_streams(self.streams)
        hosted = self.hosted
        if hosted.engine is not None:
            hosted.engine.attach(self.streams)
            self.at(time.monotonic(), self._market_clock, "market_clock")
        if hosted.venue is not None:
            sink = VenueFeed(hosted, self.lock) if hosted.engine is not None else LockedSink(self.streams, self.lock)
            hosted.venue.attach(sink)
            self.every(1.0, self._watch_venue, "venue_watch")
        sock = bind(ctx, zmq.ROUTER, self.settings.exchange_endpoint, self.settings)
        # The paper engine is single-threaded: every request under the lock. A venue adapter is
        # thread-safe: only the stream snapshot takes the lock (no event pushed while it reads).
        self.server = RpcServer(sock, hosted.adapter, self.lock, self._on_request, self.streams,
                                lock_requests=hosted.engine is not None)
        self.server.start()
        self.every(self.settings.bus.heartbeat_s, self.streams.heartbeat, "stream_heartbeat")
        log.info("exchange gateway (%s) serving %s, streams on %s", self.settings.mode,
                 self.settings.exchange_endpoint, self.settings.exchange_stream_endpoint)

    def _on_request(self, op: str, outcome: str, seconds: float) -> None:
        self.gateway_metrics.requests.labels(op, outcome).inc()
        self.gateway_metrics.request_seconds.observe(seconds)

    def _market_clock(self) -> None:
        """Step the paper market, then sleep until its next step is due (see market_clock)."""
        engine = self.hosted.engine
        assert self.streams is not None and engine is not None
        stepped = False
        try:
            with self.lock:
                engine.tick()
            self.streams.serve_subscriptions()
            stepped = True
        finally:  # a failed step (logged by the loop) must not stop the clock, nor spin it
            due = engine.next_step_at() if stepped else None
            wait = market_clock_wait(due, time.time(), self.settings.paper.tick_s, self.loop_s)
            self.at(time.monotonic() + wait, self._market_clock, "market_clock")

    def _watch_venue(self) -> None:
        """Venue health into status and metrics; a user-stream reconnect starts a new epoch."""
        venue, streams = self.hosted.venue, self.streams
        assert venue is not None and streams is not None
        if self.hosted.engine is None:
            streams.serve_subscriptions()
        status = venue.stream_status
        if status.user_stream and status.user_connects > self._user_connects:
            if self._user_connects:
                log.warning("venue user stream reconnected (%s); new stream epoch: consumers resync",
                            status.last_user_reconnect_reason or "reconnect")
                streams.new_epoch()
            self._user_connects = status.user_connects
        if venue.banned:
            self.degrade("venue IP ban: no new orders until it ends (HTTP 418)")
        elif not status.market_connected:
            self.degrade("venue market stream disconnected")
        elif status.user_stream and not status.user_connected:
            self.degrade("venue user-data stream disconnected")
        elif self.status == "degraded":
            self.recover()

    def teardown(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.hosted.venue is not None:
            self.hosted.venue.close()  # outside the lock: its stream thread may be waiting for it
        if self.hosted.engine is not None:
            with self.lock:
                self.hosted.engine.save()
                self.hosted.engine.close()
