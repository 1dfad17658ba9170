"""The exchange streams end to end on real sockets: the paper engine pushes, the gateway's stream
server publishes gap-free, a consumer joins by snapshot, detects a lost event or silence, and
resyncs. (The gateway and the consumer run here in one process, on ipc sockets, as they do in
the exchange actor and the trading actors.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from actors.exchange.server import RpcServer
from bus.sockets import bind
from config.settings import Settings
from exchange.adapter import OrderRequest
from exchange.client import RpcExchange
from exchange.paper.engine import PaperExchange
from exchange.paper.store import PaperStore
from exchange.stream_client import ExchangeStream, Resynced
from exchange.stream_server import StreamServer
from exchange.streams import BarClosed, BookTicked, OrderChanged, PositionChanged, TradeExecuted
from tests.harness import instance
from tests.trading.conftest import SYMBOLS, Clock, paper_settings


class Gateway:
    """The exchange actor's wiring, minus the process: engine, RPC server, stream server."""

    def __init__(self, settings: Settings, db: Path) -> None:
        self.clock = Clock()
        self.engine = PaperExchange(paper_settings(touch_fill_rate_per_s=0.0), SYMBOLS, PaperStore(db), self.clock)
        ctx = zmq.Context.instance()
        self.streams = StreamServer(bind(ctx, zmq.XPUB, settings.exchange_stream_endpoint, settings))
        self.engine.attach(self.streams)
        self.lock = threading.Lock()
        self.rpc = RpcServer(bind(ctx, zmq.ROUTER, settings.exchange_endpoint, settings), self.engine, self.lock,
                             lambda *_: None, self.streams)
        self.rpc.start()

    def tick(self, seconds: float = 0.25) -> None:
        with self.lock:
            self.clock.now += seconds
            self.engine.tick()
        self.streams.serve_subscriptions()

    def close(self) -> None:
        self.rpc.stop()
        self.engine.close()


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[Gateway, ExchangeStream, RpcExchange]]:
    with instance(tmp_path) as inst:
        settings = inst.settings
        gateway = Gateway(settings, tmp_path / "exchange.db")
        rpc = RpcExchange(settings)
        stream = ExchangeStream(settings, rpc)
        try:
            yield gateway, stream, rpc
        finally:
            stream.close()
            rpc.close()
            gateway.close()


def pump(gateway: Gateway, stream: ExchangeStream, until, what: str, limit_s: float = 10.0) -> list[object]:
    """Tick the market and drain the consumer until `until(items)` holds; every item seen."""
    seen: list[object] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        gateway.tick()
        if stream.socket.poll(50, zmq.POLLIN):
            seen += stream.drain()
        if until(seen):
            return seen
    raise AssertionError(f"timed out waiting for {what}; saw {[type(i).__name__ for i in seen][-20:]}")


def test_join_by_snapshot_then_events_in_order(wired) -> None:
    gateway, stream, _rpc = wired
    seen = pump(gateway, stream, lambda s: sum(isinstance(i, BookTicked) for i in s) >= 2 * len(SYMBOLS),
                "market ticks after the join")
    first = seen[0]
    assert isinstance(first, Resynced) and first.reason == "join"
    assert set(first.snapshot.tops) == set(SYMBOLS)
    assert 0 < stream.seqs["market"] <= gateway.streams.seqs["market"]
    # Bars close on the market clock (10 s bars): run the clock past one.
    seen = pump(gateway, stream, lambda s: any(isinstance(i, BarClosed) for i in s), "a bar close")
    assert not any(isinstance(i, Resynced) for i in seen)


def test_an_order_pushes_its_account_events(wired) -> None:
    gateway, stream, rpc = wired
    pump(gateway, stream, lambda s: any(isinstance(i, Resynced) for i in s), "the join")
    order = rpc.place_order(OrderRequest(client_order_id="t-1.1", symbol="BTCUSDT", side="BUY", order_type="MARKET",
                                         qty=0.01))
    seen = pump(gateway, stream, lambda s: any(isinstance(i, PositionChanged) for i in s), "the position change")
    kinds = [type(i).__name__ for i in seen if not isinstance(i, BookTicked | BarClosed)]
    assert kinds[:2] == ["OrderChanged", "TradeExecuted"]  # NEW, then the trade, then the rest
    trades = [i.fill for i in seen if isinstance(i, TradeExecuted)]
    assert {t.trade_id for t in trades} == {f.trade_id for f in order.fills}
    statuses = [i.order.status for i in seen if isinstance(i, OrderChanged)]
    assert statuses[0] == "NEW" and statuses[-1] == "FILLED"
    assert all(i.order.fills == [] for i in seen if isinstance(i, OrderChanged))
    position = next(i for i in seen if isinstance(i, PositionChanged)).position
    assert position is not None and position.qty == pytest.approx(0.01)


def test_a_lost_event_is_detected_and_resynced(wired) -> None:
    gateway, stream, _rpc = wired
    pump(gateway, stream, lambda s: any(isinstance(i, Resynced) for i in s), "the join")
    with gateway.streams._lock:
        gateway.streams.seqs["market"] += 1  # one market event published into nothing: a lost frame
    seen = pump(gateway, stream, lambda s: any(isinstance(i, Resynced) for i in s), "the resync after the gap")
    resync = next(i for i in seen if isinstance(i, Resynced))
    assert resync.reason == "gap" and stream.stats.gaps >= 1
    # Consistent afterwards: the consumer's sequence follows the gateway's again.
    pump(gateway, stream, lambda s: stream.seqs["market"] == gateway.streams.seqs["market"], "caught up")


def test_a_heartbeat_announcing_an_unseen_event_resyncs(wired) -> None:
    gateway, stream, _rpc = wired
    pump(gateway, stream, lambda s: any(isinstance(i, Resynced) for i in s), "the join")
    with gateway.streams._lock:
        gateway.streams.seqs["account"] += 1  # an account event lost, and no further account event
    gateway.streams.heartbeat()
    deadline = time.monotonic() + 10
    items: list[object] = []
    while not any(isinstance(i, Resynced) for i in items) and time.monotonic() < deadline:
        if stream.socket.poll(100, zmq.POLLIN):
            items += stream.drain()
    assert any(isinstance(i, Resynced) and i.reason == "gap" for i in items)


def test_silence_reconnects_and_rejoins(wired) -> None:
    gateway, stream, _rpc = wired
    pump(gateway, stream, lambda s: any(isinstance(i, Resynced) for i in s), "the join")
    stream.silent_after_s = 0.3
    reconnects = stream.stats.reconnects
    deadline = time.monotonic() + 10
    while stream.stats.reconnects == reconnects and time.monotonic() < deadline:
        stream.check()  # no ticks, no heartbeats: the gateway is silent
        time.sleep(0.05)
    assert stream.stats.reconnects == reconnects + 1 and not stream.synced
    stream.silent_after_s = 10.0
    seen = pump(gateway, stream, lambda s: any(isinstance(i, Resynced) for i in s), "the rejoin")
    assert any(isinstance(i, Resynced) and i.reason == "join" for i in seen)
