"""Stream failures: listenKey expiry, failed keepalive, silence, dropped connections. No fill is lost
or pushed twice; a silent stream is replaced, never trusted."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from exchange.adapter import OrderRequest
from exchange.binance_usdm import BinanceUsdmAdapter
from exchange.streams import BarClosed, TradeExecuted
from tests.binance.conftest import RecordingSink, fast_venue, make_adapter, traded
from tests.venue.binance import BinanceFake, FaultKind, VenueConfig
from tests.venue.conftest import Creds


@pytest.fixture
def venue_config() -> VenueConfig:
    return fast_venue(kline_seconds={"1m": 0.5})


def market(cid: str, symbol: str = "BTCUSDT", qty: float = 0.01, side: str = "BUY") -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=side, order_type="MARKET", qty=qty)


def assert_each_trade_once(sink: RecordingSink) -> None:
    ids = [e.fill.trade_id for e in sink.snapshot() if isinstance(e, TradeExecuted)]
    assert len(ids) == len(set(ids)), ids


def resynced(adapter: BinanceUsdmAdapter, count: int) -> Callable[[list[object]], bool]:
    """A wait_for predicate: the user stream has resynced `count` times."""
    return lambda _events: adapter.stream_status.user_resyncs >= count


def listen_keys(fake: BinanceFake) -> list[dict]:
    return fake.state()["listen_keys"]


@pytest.fixture
def quick(fake: BinanceFake, creds: Creds, sink: RecordingSink) -> Iterator[BinanceUsdmAdapter]:
    """A live adapter whose user stream is replaced after 1 s of silence and kept alive every 0.5 s."""
    adapter = make_adapter(fake, creds, user_silence_s=1.0, keepalive_s=0.5)
    adapter.attach(sink)
    assert adapter.wait_streams(10.0)
    try:
        yield adapter
    finally:
        adapter.close()


def test_listen_key_expiry_resumes_on_a_new_key_without_losing_a_fill(live: BinanceUsdmAdapter,
                                                                      sink: RecordingSink, fake: BinanceFake,
                                                                      creds: Creds) -> None:
    fake.arm(FaultKind.WS_REFUSE, count=3, scope="user")  # the new connection takes a few tries
    fake.expire_listen_keys(creds.api_key)  # listenKeyExpired, then silence on the old key
    live.place_order(market("e-1.1"))  # fills while no key is live: its events go nowhere
    sink.wait_for(traded("e-1.1", 0.01))
    status = live.stream_status
    assert status.listen_key_expiries >= 1 and status.user_connects >= 2 and status.recovered_fills >= 1
    assert len(sink.trades("e-1.1")) == 1
    assert [k["expired"] for k in listen_keys(fake)].count(False) == 1 and len(listen_keys(fake)) == 2
    live.place_order(market("e-2.1", symbol="ETHUSDT", qty=0.1))  # and the new key streams live
    sink.wait_for(traded("e-2.1", 0.1))
    assert_each_trade_once(sink)


def test_failed_keepalive_gets_a_new_key(quick: BinanceUsdmAdapter, sink: RecordingSink, fake: BinanceFake) -> None:
    fake.arm(FaultKind.KEEPALIVE_FAIL, count=1)  # -1125, and the key ends without an event
    sink.wait_for(resynced(quick, 2))
    assert quick.stream_status.keepalive_failures >= 1 and quick.stream_status.listen_key_expiries >= 1
    assert len(listen_keys(fake)) == 2
    quick.place_order(market("k-1.1"))
    sink.wait_for(traded("k-1.1", 0.01))
    assert_each_trade_once(sink)


def test_silent_user_stream_is_replaced_and_its_fills_recovered_once(quick: BinanceUsdmAdapter,
                                                                     sink: RecordingSink, fake: BinanceFake,
                                                                     creds: Creds) -> None:
    fake.arm(FaultKind.USER_STREAM_SILENT, count=50)  # events dropped, the connection stays open
    quick.place_order(market("q-1.1"))
    quick.place_order(market("q-2.1", symbol="ETHUSDT", qty=0.1))
    assert any(e.get("e") == "ORDER_TRADE_UPDATE" for e in fake.user_events(creds.api_key, dropped=True))
    fake.clear(kind=FaultKind.USER_STREAM_SILENT)
    sink.wait_for(lambda ev: traded("q-1.1", 0.01)(ev) and traded("q-2.1", 0.1)(ev))
    status = quick.stream_status
    assert status.user_silences >= 1 and status.recovered_fills >= 2 and "silent" in status.last_user_reconnect_reason
    assert len(sink.trades("q-1.1")) == 1 and len(sink.trades("q-2.1")) == 1
    position = sink.positions("ETHUSDT")[-1].position
    assert position is not None and position.qty == pytest.approx(0.1)
    assert sink.orders("q-1.1")[-1].order.status == "FILLED"
    assert_each_trade_once(sink)


def test_fills_made_while_the_connection_was_down_are_recovered_once(live: BinanceUsdmAdapter,
                                                                      sink: RecordingSink,
                                                                      fake: BinanceFake) -> None:
    live.place_order(market("g-0.1"))
    sink.wait_for(traded("g-0.1", 0.01))
    fake.arm(FaultKind.WS_REFUSE, count=4, scope="user")
    fake.drop_connections("user")
    for n in range(1, 4):
        live.place_order(market(f"g-{n}.1", side="SELL" if n % 2 else "BUY"))
    sink.wait_for(lambda ev: all(traded(f"g-{n}.1", 0.01)(ev) for n in range(1, 4)))
    assert all(len(sink.trades(f"g-{n}.1")) == 1 for n in range(4))
    assert_each_trade_once(sink)
    assert live.stream_status.user_connects >= 2


def test_silent_market_stream_is_replaced(fake: BinanceFake, creds: Creds, sink: RecordingSink) -> None:
    adapter = make_adapter(fake, creds, market_silence_s=0.5)
    adapter.attach(sink)
    try:
        assert adapter.wait_streams(10.0)

        def mute(venue: object) -> int:  # connections stay open but carry nothing any more
            muted = 0
            for conn in venue.hub.conns:  # type: ignore[attr-defined]
                if conn.scope == "market":
                    conn.streams.clear()
                    muted += 1
            return muted

        assert fake.call(mute) == 1
        sink.wait_for(lambda _ev: adapter.stream_status.market_connects >= 2)
        assert adapter.stream_status.market_silences >= 1
    finally:
        adapter.close()


def test_bars_closed_while_the_market_stream_was_down_are_caught_up(live: BinanceUsdmAdapter,
                                                                     sink: RecordingSink,
                                                                     fake: BinanceFake) -> None:
    sink.wait_for(lambda ev: sum(isinstance(e, BarClosed) and e.symbol == "BTCUSDT" for e in ev) >= 2)
    fake.arm(FaultKind.WS_REFUSE, count=6, scope="market")
    fake.drop_connections("market")
    sink.wait_for(lambda _ev: live.stream_status.market_connects >= 2)
    sink.wait_for(lambda ev: sum(isinstance(e, BarClosed) and e.symbol == "BTCUSDT" for e in ev) >= 8)
    stamps = [e.bar.ts for e in sink.snapshot() if isinstance(e, BarClosed) and e.symbol == "BTCUSDT"]
    gaps = {b - a for a, b in itertools.pairwise(stamps)}
    assert gaps == {timedelta(seconds=0.5)}, stamps  # every bar once, none missing


def test_order_cancelled_while_the_stream_was_silent_is_pushed_on_resync(quick: BinanceUsdmAdapter,
                                                                         sink: RecordingSink,
                                                                         fake: BinanceFake) -> None:
    fake.set_price("ETHUSDT", "3000.00")
    quick.place_order(OrderRequest(client_order_id="v-1.1", symbol="ETHUSDT", side="BUY", order_type="LIMIT",
                                   qty=0.1, price=2990.0, post_only=True))
    sink.wait_for(lambda _ev: bool(sink.orders("v-1.1")))
    fake.arm(FaultKind.USER_STREAM_SILENT, count=50)
    assert quick.cancel_order("ETHUSDT", "v-1.1").status == "CANCELED"
    fake.clear(kind=FaultKind.USER_STREAM_SILENT)
    sink.wait_for(lambda _ev: sink.orders("v-1.1")[-1].order.status == "CANCELED")
    assert quick.stream_status.user_silences >= 1
    first, last = sink.orders("v-1.1")[0].order, sink.orders("v-1.1")[-1].order
    assert first.status == "NEW" and last.created_at == first.created_at
