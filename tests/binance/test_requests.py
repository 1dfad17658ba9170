"""The request half against the fake venue: market data, account, orders by client id, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exchange.adapter import OrderRequest
from exchange.binance_usdm import BinanceUsdmAdapter
from exchange.errors import BadRequest, OrderNotFound, OrderRejected
from tests.binance.conftest import make_adapter
from tests.venue.binance import BinanceFake, VenueConfig
from tests.venue.conftest import FAST, Creds


def posts(fake: BinanceFake, path: str = "/fapi/v1/order") -> list[dict]:
    return [r for r in fake.request_log() if r["method"] == "POST" and r["path"] == path]


def market(cid: str, side: str = "BUY", qty: float = 0.01, symbol: str = "BTCUSDT", **kw: object) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=side, order_type="MARKET", qty=qty, **kw)


def test_instruments_tops_and_closed_bars(adapter: BinanceUsdmAdapter, fake: BinanceFake) -> None:
    instruments = adapter.instruments()
    assert instruments["BTCUSDT"].tick_size == 0.1 and instruments["BTCUSDT"].lot_size == 0.001
    assert instruments["BTCUSDT"].min_notional == 100.0 and instruments["ETHUSDT"].min_notional == 20.0
    tops = adapter.fetch_tops(["BTCUSDT", "ETHUSDT"])
    book = fake.book("BTCUSDT")
    assert tops["BTCUSDT"].bid < tops["BTCUSDT"].ask and tops["BTCUSDT"].mark > 0
    assert abs(tops["BTCUSDT"].bid - float(book["bidPrice"])) < 50
    bars = adapter.fetch_bars("BTCUSDT", 5)
    assert len(bars) == 5 and bars == sorted(bars, key=lambda b: b.ts)
    assert bars[-1].ts + timedelta(minutes=1) <= datetime.now(UTC) + timedelta(seconds=1)  # closed bars only
    with pytest.raises(BadRequest) as exc:
        adapter.fetch_tops(["NOPEUSDT"])
    assert exc.value.code == "unknown_symbol"


def test_market_order_returns_its_fills_and_placing_again_is_idempotent(adapter: BinanceUsdmAdapter,
                                                                         fake: BinanceFake) -> None:
    fake.set_price("BTCUSDT", "60000.0")  # the walk pauses: marks stay put between reads
    order = adapter.place_order(market("m-1.1"))
    assert order.status == "FILLED" and order.filled_qty == pytest.approx(0.01)
    assert sum(f.qty for f in order.fills) == pytest.approx(0.01)
    assert all(f.liquidity == "taker" and f.client_order_id == "m-1.1" for f in order.fills)
    assert order.fills[0].trade_id.startswith("BTCUSDT-")
    again = adapter.place_order(market("m-1.1"))
    assert again.order_id == order.order_id and again.status == "FILLED"
    assert len(posts(fake)) == 1
    positions = adapter.fetch_positions()
    assert [(p.symbol, p.side, p.qty, p.leverage) for p in positions] == [("BTCUSDT", "LONG", 0.01, 10.0)]
    balance = adapter.fetch_balance()
    assert balance.wallet_balance < 10_000 and balance.position_margin > 0
    snap = adapter.snapshot()
    assert snap.positions == positions and set(snap.tops) == {"BTCUSDT", "ETHUSDT"} and snap.open_orders == []
    fills = adapter.fetch_fills(since=datetime.now(UTC) - timedelta(minutes=5))
    assert [f.trade_id for f in fills] == [f.trade_id for f in order.fills]


def test_resting_post_only_order_cancel_and_lookup_by_prefix(adapter: BinanceUsdmAdapter, fake: BinanceFake) -> None:
    fake.set_price("BTCUSDT", "60000.0")
    order = adapter.place_order(OrderRequest(client_order_id="r-1.1", symbol="BTCUSDT", side="BUY",
                                             order_type="LIMIT", qty=0.01, price=59990.04, post_only=True))
    assert order.status == "NEW" and order.price == 59990.0 and order.post_only  # floored to the tick
    assert adapter.fetch_order("BTCUSDT", "r-1.1").status == "NEW"
    assert [o.client_order_id for o in adapter.fetch_orders("BTCUSDT", "r-1.", open_only=True)] == ["r-1.1"]
    assert [o.client_order_id for o in adapter.snapshot().open_orders] == ["r-1.1"]
    cancelled = adapter.cancel_order("BTCUSDT", "r-1.1")
    assert cancelled.status == "CANCELED" and not cancelled.is_open
    assert adapter.cancel_order("BTCUSDT", "r-1.1").status == "CANCELED"  # terminal: returned as it is
    assert [o.status for o in adapter.fetch_orders("BTCUSDT", "r-1.")] == ["CANCELED"]
    with pytest.raises(OrderNotFound):
        adapter.fetch_order("BTCUSDT", "never.1")
    with pytest.raises(OrderNotFound):
        adapter.cancel_order("BTCUSDT", "never.1")


def test_filters_round_and_refuse_locally(adapter: BinanceUsdmAdapter, fake: BinanceFake) -> None:
    before = len(posts(fake))
    with pytest.raises(OrderRejected) as exc:
        adapter.place_order(OrderRequest(client_order_id="f-1.1", symbol="BTCUSDT", side="BUY", order_type="LIMIT",
                                         qty=0.001, price=50000.0, post_only=True))
    assert exc.value.code == "min_notional"
    with pytest.raises(OrderRejected) as exc:
        adapter.place_order(market("f-2.1", qty=0.0004))
    assert exc.value.code == "qty_below_lot"
    assert len(posts(fake)) == before  # refused before anything was sent
    order = adapter.place_order(market("f-3.1", qty=0.0109))
    assert order.qty == pytest.approx(0.010)  # floored to the step
    sent = posts(fake)[-1]["params"]
    assert sent["quantity"] == "0.010" and sent["newClientOrderId"] == "f-3.1"
    # A small reduce-only exit is exempt from the minimum notional (as on Binance).
    exit_order = adapter.place_order(market("f-4.1", side="SELL", qty=0.001, reduce_only=True))
    assert exit_order.status == "FILLED" and exit_order.reduce_only


def test_place_order_refused_until_the_account_check_passed(fake: BinanceFake, creds: Creds) -> None:
    adapter = make_adapter(fake, creds, check=False)
    try:
        with pytest.raises(BadRequest) as exc:
            adapter.place_order(market("c-1.1"))
        assert exc.value.code == "account_not_checked"
        assert posts(fake) == []
        assert adapter.fetch_balance().wallet_balance == 10_000  # reads need no check
    finally:
        adapter.close()


def test_market_data_only_adapter_without_keys(fake: BinanceFake) -> None:
    adapter = make_adapter(fake, None, check=False)
    try:
        assert adapter.fetch_tops(["ETHUSDT"])["ETHUSDT"].ask > 0
        with pytest.raises(BadRequest) as exc:
            adapter.fetch_balance()
        assert exc.value.code == "no_credentials"
    finally:
        adapter.close()


@pytest.fixture
def venue_config() -> VenueConfig:
    return VenueConfig(**FAST)
