"""An order the venue ends EXPIRED, seen by the router's engine through the Binance adapter.

Binance expires a resting reduce-only order when the market reaches it after its position has
gone (the paper engine cancels one instead). The router must read that as "position already
closed" and end the exit there: placing again would only meet -2022. The adapter's account
stream is recorded and handed to the engine in the test thread, as the router's loop would.
"""

from __future__ import annotations

from decimal import Decimal

from actors.router.quality import Quality
from actors.router.routing import RouteEngine
from config.strategy import RouterConfig
from exchange.adapter import OrderRequest
from exchange.streams import OrderChanged, TradeExecuted
from tests.binance.conftest import RecordingSink, make_adapter
from tests.trading.test_routing import Recorder, work
from tests.venue.binance import BinanceFake
from tests.venue.conftest import Creds


def _deliver(engine: RouteEngine, sink: RecordingSink, start: int) -> int:
    events = sink.snapshot()
    for event in events[start:]:
        if isinstance(event, OrderChanged):
            engine.on_order(event.order)
        elif isinstance(event, TradeExecuted):
            engine.on_fill(event.fill)
    return len(events)


def test_a_reduce_only_exit_the_venue_expires_ends_as_position_closed(fake: BinanceFake, creds: Creds) -> None:
    adapter = make_adapter(fake, creds)
    sink = RecordingSink()
    adapter.attach(sink)
    try:
        fake.set_price("BTCUSDT", "60000.00")  # the walk paused: the exit rests until the test moves it
        adapter.place_order(OrderRequest(symbol="BTCUSDT", side="BUY", order_type="MARKET", qty=0.01,
                                         client_order_id="en-open.1"))
        rec = Recorder()
        engine = RouteEngine(adapter, RouterConfig(reprice_after_s=60.0, max_reprices=2), Quality(50), rec)
        engine.on_top(adapter.fetch_tops(["BTCUSDT"])["BTCUSDT"])
        engine.submit(work("ex-tp", "SELL", 0.01, symbol="BTCUSDT", purpose="exit_tp", reduce_only=True,
                           position_id="p-1", expires_at=None), lot=0.001, notional=600.0)
        exit_order = next(o for o in fake.orders(creds.api_key) if o["clientOrderId"] == "ex-tp.1")
        assert exit_order["status"] == "NEW" and exit_order["reduceOnly"]
        # The position goes by another way (a manual close), then the market reaches the exit's price.
        adapter.place_order(OrderRequest(symbol="BTCUSDT", side="SELL", order_type="MARKET", qty=0.01,
                                         reduce_only=True, client_order_id="manual.1"))
        fake.set_price("BTCUSDT", Decimal(exit_order["price"]) + Decimal("1"))
        sink.wait_for(lambda evs: any(isinstance(e, OrderChanged) and e.order.client_order_id == "ex-tp.1"
                                      and e.order.status == "EXPIRED" for e in evs))
        _deliver(engine, sink, 0)
        assert rec.done["ex-tp"] == ("CANCELED", 0.0, "position already closed"), rec.done
        assert "ex-tp" not in engine.jobs
        expired = [o for o in rec.orders if o.client_order_id == "ex-tp.1" and o.status == "EXPIRED"]
        assert expired and expired[-1].reason == "reduce_only_no_position"
        # Nothing placed again for the intent.
        assert [o["clientOrderId"] for o in fake.orders(creds.api_key)
                if o["clientOrderId"].startswith("ex-tp.")] == ["ex-tp.1"]
    finally:
        adapter.close()

