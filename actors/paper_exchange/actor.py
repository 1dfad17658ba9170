"""The paper exchange actor: the market clock in the loop, the adapter interface on RPC.

Its state lives in `<var>/paper_exchange/exchange.db` (never under the state files), so the
account, positions and resting orders survive a restart of this process.
"""

from __future__ import annotations

import logging
import threading

import zmq

from actors.base import Actor
from actors.paper_exchange.metrics import PaperMetrics
from actors.paper_exchange.server import RpcServer
from bus.sockets import bind
from config.settings import Settings
from exchange.paper.engine import PaperExchange
from exchange.paper.store import PaperStore

log = logging.getLogger(__name__)


class PaperExchangeActor(Actor):
    name = "paper_exchange"

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

    def setup(self) -> None:
        sock = bind(zmq.Context.instance(), zmq.ROUTER, self.settings.exchange_endpoint, self.settings)
        self.server = RpcServer(sock, self.engine, self.lock, self._on_request)
        self.server.start()
        log.info("paper exchange serving %s (wallet %.2f, %d positions, %d open orders)",
                 self.settings.exchange_endpoint, self.engine.wallet_balance, len(self.engine.positions),
                 self.engine.open_order_count)

    def _on_request(self, op: str, outcome: str, seconds: float) -> None:
        self.paper_metrics.requests.labels(op, outcome).inc()
        self.paper_metrics.request_seconds.observe(seconds)

    def step(self) -> None:
        with self.lock:
            self.engine.tick()

    def teardown(self) -> None:
        if self.server is not None:
            self.server.stop()
        with self.lock:
            self.engine.save()
            self.engine.close()
