"""The paper exchange actor: the exchange gateway of SIM mode.

It hosts the paper engine and serves the whole adapter interface to the trading actors:
requests over RPC (a ROUTER, exchange/rpc.py) and the market and account streams over a
PUB (exchange/stream_server.py). The market clock is a timer: every `paper.tick_s` the
engine steps, matches resting orders and pushes what happened. Clock, RPC and stream
snapshots take the same lock, so the engine sees one caller at a time and a snapshot is
always at a known stream sequence.

Its state lives in `<var>/exchange/exchange.db` (never under the state files), so the
account, positions and resting orders survive a restart of this process.
"""

from __future__ import annotations

import logging
import threading

import zmq

from actors.base import Actor
from actors.exchange.metrics import PaperMetrics
from actors.exchange.server import RpcServer
from bus.sockets import bind
from config.settings import Settings
from exchange.paper.engine import PaperExchange
from exchange.paper.store import PaperStore
from exchange.stream_server import StreamServer

log = logging.getLogger(__name__)


class ExchangeGateway(Actor):
    name = "exchange"

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        # Open the database first: a locked or unreadable one stops start-up before anything runs.
        self.store = PaperStore(settings.var_path / "paper_exchange" / "exchange.db")
        self.engine = PaperExchange(settings.paper, settings.symbols, self.store)
        super().__init__(settings, serve_metrics=serve_metrics)
        self.loop_s = settings.loop_interval(self.name, settings.paper.tick_s)
        self.lock = threading.Lock()
        self.paper_metrics = PaperMetrics(self.registry)
        self.paper_metrics.watch(self.registry, self.engine)
        self.server: RpcServer | None = None
        self.streams: StreamServer | None = None

    def setup(self) -> None:
        ctx = zmq.Context.instance()
        self.streams = StreamServer(bind(ctx, zmq.XPUB, self.settings.exchange_stream_endpoint, self.settings))
        self.paper_metrics.watch_streams(self.registry, self.streams)
        self.engine.attach(self.streams)
        sock = bind(ctx, zmq.ROUTER, self.settings.exchange_endpoint, self.settings)
        self.server = RpcServer(sock, self.engine, self.lock, self._on_request, self.streams)
        self.server.start()
        self.every(self.loop_s, self._tick, "market_clock", now=True)
        self.every(self.settings.bus.heartbeat_s, self.streams.heartbeat, "stream_heartbeat")
        log.info("paper exchange serving %s, streams on %s (wallet %.2f, %d positions, %d open orders)",
                 self.settings.exchange_endpoint, self.settings.exchange_stream_endpoint, self.engine.wallet_balance,
                 len(self.engine.positions), self.engine.open_order_count)

    def _on_request(self, op: str, outcome: str, seconds: float) -> None:
        self.paper_metrics.requests.labels(op, outcome).inc()
        self.paper_metrics.request_seconds.observe(seconds)

    def _tick(self) -> None:
        assert self.streams is not None
        with self.lock:
            self.engine.tick()
        self.streams.serve_subscriptions()

    def teardown(self) -> None:
        if self.server is not None:
            self.server.stop()
        with self.lock:
            self.engine.save()
            self.engine.close()
