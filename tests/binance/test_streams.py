"""The push half: market events, and account events for market and maker orders (partial fills)."""

from __future__ import annotations

import threading

import pytest

from exchange.adapter import OrderRequest
from exchange.binance_usdm import BinanceUsdmAdapter
from exchange.streams import BalanceChanged, BarClosed, BookTicked, OrderChanged, PositionChanged, TradeExecuted
from tests.binance.conftest import RecordingSink, fast_venue, make_adapter, traded
from tests.venue.binance import BinanceFake, VenueConfig
from tests.venue.conftest import Creds


@pytest.fixture
def venue_config() -> VenueConfig:
    return fast_venue(kline_seconds={"1m": 0.5})


def kinds_for(sink: RecordingSink, cid: str, symbol: str) -> list[str]:
    """The account events of one order (and its symbol's position, and the balance), as kind names."""
    out = []
    for e in sink.account_events():
        if isinstance(e, OrderChanged) and e.order.client_order_id == cid:
            out.append(f"order:{e.order.status}")
        elif isinstance(e, TradeExecuted) and e.fill.client_order_id == cid:
            out.append("trade")
        elif isinstance(e, PositionChanged) and e.symbol == symbol:
            out.append("position")
        elif isinstance(e, BalanceChanged):
            out.append("balance")
    return out


def test_market_stream_pushes_tops_with_marks_and_bar_closes(live: BinanceUsdmAdapter, sink: RecordingSink) -> None:
    events = sink.wait_for(lambda ev: {e.top.symbol for e in ev if isinstance(e, BookTicked)} == {"BTCUSDT", "ETHUSDT"}
                           and sum(isinstance(e, BarClosed) for e in ev) >= 4)
    top = next(e.top for e in events if isinstance(e, BookTicked) and e.top.symbol == "BTCUSDT")
    assert top.bid < top.ask and top.mark > 0 and top.bid_qty > 0
    bars = [e for e in events if isinstance(e, BarClosed) and e.symbol == "BTCUSDT"]
    assert [b.bar.ts for b in bars] == sorted({b.bar.ts for b in bars})  # each close once, in order
    assert sink.threads == {"binance-streams"}  # the sink is called from the stream thread only


def test_market_order_events_come_in_the_paper_engine_order(live: BinanceUsdmAdapter, sink: RecordingSink,
                                                           fake: BinanceFake) -> None:
    start = len(sink.account_events())
    live.place_order(OrderRequest(client_order_id="s-1.1", symbol="BTCUSDT", side="BUY", order_type="MARKET",
                                  qty=0.01))
    sink.wait_for(lambda ev: any(isinstance(e, BalanceChanged) for e in ev[start:])
                  and traded("s-1.1", 0.01)(ev))
    sink.wait_for(lambda ev: kinds_for(sink, "s-1.1", "BTCUSDT")[-4:] == ["trade", "order:FILLED", "position",
                                                                          "balance"])
    kinds = kinds_for(sink, "s-1.1", "BTCUSDT")
    assert "order:NEW" in kinds and kinds.index("order:NEW") < kinds.index("trade")
    position = sink.positions("BTCUSDT")[-1].position
    assert position is not None and position.side == "LONG" and position.qty == pytest.approx(0.01)
    assert position.leverage == 10.0 and position.opened_at is not None
    assert sink.trades("s-1.1")[0].fill.qty == pytest.approx(0.01)


@pytest.mark.parametrize("venue_config", [fast_venue(account_update_first=True)])
def test_position_follows_its_trade_when_account_update_comes_first(live: BinanceUsdmAdapter,
                                                                     sink: RecordingSink) -> None:
    live.place_order(OrderRequest(client_order_id="s-2.1", symbol="ETHUSDT", side="SELL", order_type="MARKET",
                                  qty=0.1))
    sink.wait_for(lambda ev: kinds_for(sink, "s-2.1", "ETHUSDT")[-4:] == ["trade", "order:FILLED", "position",
                                                                          "balance"])
    assert sink.positions("ETHUSDT")[-1].position.side == "SHORT"


def test_resting_maker_order_filled_later_in_parts(live: BinanceUsdmAdapter, sink: RecordingSink,
                                                   fake: BinanceFake) -> None:
    fake.set_price("BTCUSDT", "60000.0")
    fake.arm("partial_fills", count=1, chunks=3)
    order = live.place_order(OrderRequest(client_order_id="s-3.1", symbol="BTCUSDT", side="BUY", order_type="LIMIT",
                                          qty=0.03, price=59990.0, post_only=True))
    assert order.status == "NEW"
    fake.set_price("BTCUSDT", "59980.0")  # the ask falls through the bid: the order fills as maker, a third a tick
    sink.wait_for(traded("s-3.1", 0.03))
    trades = sink.trades("s-3.1")
    assert len(trades) == 3 and len({t.fill.trade_id for t in trades}) == 3
    assert all(t.fill.liquidity == "maker" and t.fill.price == 59990.0 for t in trades)
    assert sum(t.fill.qty for t in trades) == pytest.approx(0.03)  # last-fill quantities, never cumulative
    statuses = [e.order.status for e in sink.orders("s-3.1")]
    assert statuses[0] == "NEW" and statuses[-1] == "FILLED" and statuses.count("PARTIALLY_FILLED") == 2
    filled = [e.order.filled_qty for e in sink.orders("s-3.1")]
    assert filled == sorted(filled)
    sink.wait_for(lambda ev: (p := sink.positions("BTCUSDT")) and p[-1].position is not None
                  and p[-1].position.qty == pytest.approx(0.03))
    final = live.fetch_order("BTCUSDT", "s-3.1")
    assert final.status == "FILLED" and sorted(f.trade_id for f in final.fills) == sorted(t.fill.trade_id
                                                                                           for t in trades)


def test_market_order_filled_in_delayed_chunks(live: BinanceUsdmAdapter, sink: RecordingSink,
                                               fake: BinanceFake) -> None:
    fake.arm("partial_fills", count=1, chunks=3, delay_s=0.1)
    order = live.place_order(OrderRequest(client_order_id="s-4.1", symbol="ETHUSDT", side="BUY",
                                          order_type="MARKET", qty=0.3))
    assert order.status == "PARTIALLY_FILLED" and sum(f.qty for f in order.fills) == pytest.approx(order.filled_qty)
    sink.wait_for(traded("s-4.1", 0.3))
    assert [round(t.fill.qty, 3) for t in sink.trades("s-4.1")] == [0.1, 0.1, 0.1]


def test_streams_stop_on_close(fake: BinanceFake, creds: Creds) -> None:
    adapter = make_adapter(fake, creds)
    sink = RecordingSink()
    adapter.attach(sink)
    assert adapter.wait_streams(10.0)
    assert adapter.stream_status.running
    adapter.close()
    alive = [t.name for t in threading.enumerate() if t.name == "binance-streams" and t.is_alive()]
    assert not alive, [(t.name, t.ident) for t in threading.enumerate()]
    fake.wait_until(lambda v: not v.hub.conns, timeout=5.0)
