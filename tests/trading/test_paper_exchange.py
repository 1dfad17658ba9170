"""The paper exchange engine (real SQLite): fees, partial fills, rejects, idempotency, restarts."""

from __future__ import annotations

import itertools

import pytest

from exchange.adapter import OrderRequest
from exchange.errors import BadRequest, OrderNotFound, OrderRejected
from exchange.paper.store import StoreError


def market(cid: str, side: str, qty: float, symbol: str = "BTCUSDT", reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=side, order_type="MARKET", qty=qty,
                        reduce_only=reduce_only)


def test_market_round_trip_books_fees_and_realized_pnl(open_exchange) -> None:
    ex, clock = open_exchange()
    start = ex.fetch_balance().wallet_balance
    top = ex.fetch_tops(["BTCUSDT"])["BTCUSDT"]
    buy = ex.place_order(market("t-1", "BUY", 0.02))
    assert buy.status == "FILLED" and buy.fills[0].price == top.ask and buy.fills[0].liquidity == "taker"
    assert buy.fills[0].fee == pytest.approx(0.02 * top.ask * 5 / 10_000)
    [position] = ex.fetch_positions()
    assert (position.side, position.qty, position.entry_price) == ("LONG", 0.02, top.ask)
    for _ in range(40):
        clock.now += 0.25
        ex.tick()
    top2 = ex.fetch_tops(["BTCUSDT"])["BTCUSDT"]
    sell = ex.place_order(market("t-2", "SELL", 0.02, reduce_only=True))
    fill = sell.fills[0]
    assert fill.realized_pnl == pytest.approx((top2.bid - top.ask) * 0.02)
    assert ex.fetch_positions() == []
    fees = buy.fills[0].fee + fill.fee
    balance = ex.fetch_balance()
    assert balance.wallet_balance == pytest.approx(start + fill.realized_pnl - fees)
    assert balance.fees_paid == pytest.approx(fees)
    assert {f.trade_id for f in ex.fetch_fills()} == {buy.fills[0].trade_id, fill.trade_id}


def test_placing_is_idempotent_on_client_order_id(open_exchange) -> None:
    ex, _clock = open_exchange()
    first = ex.place_order(market("dup-1", "BUY", 0.01))
    again = ex.place_order(market("dup-1", "BUY", 0.01))
    assert again == first
    assert len(ex.fetch_fills()) == 1
    assert ex.fetch_positions()[0].qty == 0.01


def test_post_only_rests_then_fills_as_maker_in_parts(open_exchange) -> None:
    ex, clock = open_exchange(touch_fill_rate_per_s=3.0)
    top = ex.fetch_tops(["ETHUSDT"])["ETHUSDT"]
    with pytest.raises(OrderRejected, match="post_only_would_cross"):
        ex.place_order(OrderRequest(client_order_id="x-0", symbol="ETHUSDT", side="BUY", order_type="LIMIT",
                                    qty=1.0, price=top.ask, post_only=True))
    order = ex.place_order(OrderRequest(client_order_id="x-1", symbol="ETHUSDT", side="BUY", order_type="LIMIT",
                                        qty=3.0, price=top.bid, post_only=True))
    assert order.status == "NEW" and ex.fetch_balance().order_margin > 0
    for _ in range(400):
        clock.now += 0.25
        ex.tick()
        order = ex.fetch_order("ETHUSDT", "x-1")
        if not order.is_open:
            break
    assert order.status == "FILLED"
    assert all(f.liquidity == "maker" and f.price == top.bid for f in order.fills)
    assert sum(f.qty for f in order.fills) == pytest.approx(3.0)
    assert order.avg_price == pytest.approx(top.bid)
    assert all(f.fee == pytest.approx(f.qty * f.price * 2 / 10_000) for f in order.fills)


def test_partial_fills_happen_at_the_touch(open_exchange) -> None:
    ex, clock = open_exchange(touch_fill_rate_per_s=2.0)
    partial_seen = False
    for n in range(30):
        top = ex.fetch_tops(["SOLUSDT"])["SOLUSDT"]
        cid = f"p-{n}"
        ex.place_order(OrderRequest(client_order_id=cid, symbol="SOLUSDT", side="SELL", order_type="LIMIT",
                                    qty=5.0, price=top.ask, post_only=True))
        for _ in range(8):
            clock.now += 0.25
            ex.tick()
        order = ex.cancel_order("SOLUSDT", cid)
        partial_seen |= 0 < order.filled_qty < 5.0 or len(order.fills) > 1
    assert partial_seen


def test_rejects_name_their_reason(open_exchange) -> None:
    ex, _clock = open_exchange(starting_balance=1_000.0, instruments={"SOLUSDT": {"min_notional": 20.0}})
    with pytest.raises(OrderRejected, match="reduce_only_rejected"):
        ex.place_order(market("r-1", "SELL", 0.01, reduce_only=True))
    with pytest.raises(OrderRejected, match="insufficient_margin"):
        ex.place_order(market("r-2", "BUY", 1.0))  # 65k notional on 1k at 5x
    with pytest.raises(OrderRejected, match="qty_below_lot"):
        ex.place_order(market("r-3", "BUY", 0.0001))
    with pytest.raises(OrderRejected, match="min_notional"):
        ex.place_order(market("r-4", "BUY", 0.1, symbol="SOLUSDT"))  # 0.1 SOL ~ 15 USDT < 20
    with pytest.raises(BadRequest, match="unknown_symbol"):
        ex.place_order(market("r-5", "BUY", 1.0, symbol="DOGEUSDT"))
    with pytest.raises(OrderNotFound):
        ex.fetch_order("BTCUSDT", "never-placed")
    assert ex.fetch_fills() == [] and ex.stats.rejects["insufficient_margin"] == 1


def test_simulated_overload_rejects_some_orders(open_exchange) -> None:
    ex, _clock = open_exchange(reject_prob=0.3)
    outcomes = []
    for n in range(60):
        try:
            ex.place_order(market(f"o-{n}", "BUY" if n % 2 == 0 else "SELL", 0.001))
            outcomes.append("ok")
        except OrderRejected as exc:
            assert exc.code == "overloaded"
            outcomes.append("rejected")
    assert 5 < outcomes.count("rejected") < 35


def test_state_survives_a_restart(open_exchange) -> None:
    ex, clock = open_exchange()
    ex.place_order(market("s-1", "BUY", 0.02))
    top = ex.fetch_tops(["ETHUSDT"])["ETHUSDT"]
    ex.place_order(OrderRequest(client_order_id="s-2", symbol="ETHUSDT", side="BUY", order_type="LIMIT", qty=0.5,
                                price=round(top.bid * 0.9, 2), post_only=True))
    for _ in range(30):
        clock.now += 0.25
        ex.tick()
    before = (ex.fetch_balance().wallet_balance, ex.fetch_positions(), ex.fetch_orders("ETHUSDT", open_only=True),
              ex.fetch_fills(), ex.fetch_bars("BTCUSDT", 50))
    step = ex.market.step
    with pytest.raises(StoreError, match="in use"):
        open_exchange()  # a second exchange on the same database refuses to start
    ex.close()
    again, _ = open_exchange()
    after = (again.fetch_balance().wallet_balance, again.fetch_positions(),
             again.fetch_orders("ETHUSDT", open_only=True), again.fetch_fills(), again.fetch_bars("BTCUSDT", 50))
    assert after[0] == pytest.approx(before[0])
    assert [(p.symbol, p.side, p.qty, p.entry_price) for p in after[1]] == \
        [(p.symbol, p.side, p.qty, p.entry_price) for p in before[1]]
    assert after[2] == before[2] and after[3] == before[3]
    assert after[4] == before[4]
    assert again.market.step <= step  # resumed from the last saved bar: the seeded path replays
    assert again.place_order(market("s-3", "BUY", 0.01)).fills[0].trade_id not in {f.trade_id for f in before[3]}


def test_market_path_is_seeded(open_exchange) -> None:
    ex, _clock = open_exchange()
    closes = [b.close for b in ex.fetch_bars("BTCUSDT", 60)]
    assert len(closes) >= 55 and len(set(closes)) > 50
    returns = [b / a - 1 for a, b in itertools.pairwise(closes)]
    # 5 s bars at time_scale 30 are 150 s of market time: BTC at 55% a year moves ~0.12% a bar.
    rms = (sum(r * r for r in returns) / len(returns)) ** 0.5
    assert 0.0002 < rms < 0.01
