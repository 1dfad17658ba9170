"""The paper exchange engine's money and venue rules, in process and exact.

The engine runs on a real `PaperStore` (SQLite in tmp_path) with its market replaced by a
`VenueMarket` the test feeds (`on_book`, `on_bar`), so the top of book is exactly where each rule
needs it, and on instruments with binary-exact ticks and lots (BTCUSDT tick 0.5 / lot 0.25,
ETHUSDT tick 0.25 / lot 0.5). Fees are 2.5 bps maker and 10 bps taker at 4x leverage unless a test
says otherwise. Results are compared as whole objects: fills, orders, positions, balances and the
stream events, in the order the engine pushes them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exchange.adapter import Balance, Bar, BookTop, ExchangeFill, ExchangePosition, Instrument, Order, OrderRequest
from exchange.errors import BadRequest, OrderNotFound, OrderRejected
from exchange.paper.engine import (
    MAX_BOOK_LEVELS,
    ORDER_RETENTION_S,
    PRUNE_EVERY_S,
    EngineStats,
    PaperExchange,
    PaperPosition,
)
from exchange.paper.store import PaperStore
from exchange.paper.venue_market import VenueMarket
from exchange.streams import (
    BalanceChanged,
    BarClosed,
    BookTicked,
    ExchangeSnapshot,
    OrderChanged,
    PositionChanged,
    TradeExecuted,
)
from tests.trading.conftest import Clock, paper_settings

T0 = 1_750_000_000.0
BTC = Instrument(symbol="BTCUSDT", tick_size=0.5, lot_size=0.25, min_notional=5.0)
ETH = Instrument(symbol="ETHUSDT", tick_size=0.25, lot_size=0.5, min_notional=5.0)
INSTRUMENTS = {"BTCUSDT": BTC, "ETHUSDT": ETH}
RATES = {"maker_fee_bps": 2.5, "taker_fee_bps": 10.0, "leverage": 4.0, "touch_fill_rate_per_s": 0.0}


def at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class Recorder:
    """A stream sink that keeps what it is given, in order."""

    def __init__(self) -> None:
        self.market_events: list[object] = []
        self.account_events: list[object] = []

    def market(self, event: object) -> None:
        self.market_events.append(event)

    def account(self, event: object) -> None:
        self.account_events.append(event)

    def take(self) -> list[object]:
        events, self.account_events = self.account_events, []
        return events


class Venue:
    """One engine on the test's market, clock and sink."""

    def __init__(self, ex: PaperExchange, clock: Clock, sink: Recorder) -> None:
        self.ex, self.clock, self.sink = ex, clock, sink

    @property
    def market(self) -> VenueMarket:
        assert isinstance(self.ex.market, VenueMarket)
        return self.ex.market

    def book(self, bid: float, ask: float, symbol: str = "BTCUSDT", bid_qty: float = 100.0, ask_qty: float = 100.0,
             mark: float | None = None) -> BookTop:
        top = BookTop(symbol=symbol, bid=bid, ask=ask, bid_qty=bid_qty, ask_qty=ask_qty,
                      mark=(bid + ask) / 2 if mark is None else mark, ts=at(self.clock.now))
        self.market.on_book(top)
        return top

    def place(self, cid: str, side: str, qty: float, price: float | None = None, symbol: str = "BTCUSDT",
              post_only: bool = False, reduce_only: bool = False) -> Order:
        return self.ex.place_order(OrderRequest(
            client_order_id=cid, symbol=symbol, side=side, order_type="MARKET" if price is None else "LIMIT",
            qty=qty, price=price, post_only=post_only, reduce_only=reduce_only))

    def reject(self, cid: str, side: str, qty: float, price: float | None = None, **kw: object) -> tuple[str, str]:
        with pytest.raises(OrderRejected) as caught:
            self.place(cid, side, qty, price, **kw)  # type: ignore[arg-type]
        return caught.value.code, caught.value.detail

    def tick(self, seconds: float = 1.0) -> int:
        self.clock.now += seconds
        return self.ex.tick()


@pytest.fixture
def open_venue(tmp_path: Path) -> Iterator[Callable[..., Venue]]:
    """Open (or reopen, on the same database) an engine whose book the test sets."""
    opened: list[PaperExchange] = []
    clock = Clock(T0)

    def _open(instruments: dict[str, Instrument] | None = None, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
              **overrides: object) -> Venue:
        ex = PaperExchange(paper_settings(**{**RATES, **overrides}), symbols, PaperStore(tmp_path / "exchange.db"),
                           clock, market=VenueMarket(symbols),
                           instruments=INSTRUMENTS if instruments is None else instruments)
        opened.append(ex)
        sink = Recorder()
        ex.attach(sink)
        venue = Venue(ex, clock, sink)
        if "ETHUSDT" in symbols:
            venue.book(2000.0, 2000.25, symbol="ETHUSDT")  # a quiet second market
        return venue

    yield _open
    for ex in opened:
        try:
            ex.close()
        except Exception:
            pass


def fill(v: Venue, n: int, order: int, cid: str, side: str, qty: float, price: float, fee: float,
         liquidity: str = "taker", realized: float = 0.0, reduce_only: bool = False, ts: float = T0,
         symbol: str = "BTCUSDT") -> ExchangeFill:
    return ExchangeFill(trade_id=f"{v.ex.epoch}-T{n}", order_id=f"{v.ex.epoch}-O{order}", client_order_id=cid,
                        symbol=symbol, side=side, qty=qty, price=price, fee=fee, liquidity=liquidity,
                        realized_pnl=realized, reduce_only=reduce_only, ts=at(ts))


def position(symbol: str, side: str, qty: float, entry: float, mark: float, unrealized: float, margin: float,
             opened: float, updated: float, realized: float = 0.0, leverage: float = 4.0) -> ExchangePosition:
    return ExchangePosition(symbol=symbol, side=side, qty=qty, entry_price=entry, mark_price=mark,
                            unrealized_pnl=unrealized, realized_pnl=realized, leverage=leverage, margin=margin,
                            opened_at=at(opened), updated_at=at(updated))


# --- one fill: fee, wallet, position, the fill, the order, the events --------------------------------


def test_a_market_buy_books_the_taker_fee_and_pushes_trade_order_position_balance_in_order(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0, mark=99.75)
    order = v.place("b-1", "BUY", 2.0)
    trade = fill(v, 1, 1, "b-1", "BUY", 2.0, 100.0, fee=0.2)
    new = Order(order_id=f"{v.ex.epoch}-O1", client_order_id="b-1", symbol="BTCUSDT", side="BUY",
                order_type="MARKET", status="NEW", qty=2.0, created_at=at(T0), updated_at=at(T0))
    done = new.model_copy(update={"status": "FILLED", "filled_qty": 2.0, "avg_price": 100.0})
    assert order == done.model_copy(update={"fills": [trade]})
    held = position("BTCUSDT", "LONG", 2.0, 100.0, 99.75, unrealized=-0.5, margin=49.875, opened=T0, updated=T0)
    balance = Balance(wallet_balance=9999.8, unrealized_pnl=-0.5, margin_balance=9999.3, position_margin=49.875,
                      order_margin=0.0, available_balance=9949.425, fees_paid=0.2, ts=at(T0))
    assert v.sink.take() == [OrderChanged(order=new), TradeExecuted(fill=trade), OrderChanged(order=done),
                             PositionChanged(symbol="BTCUSDT", position=held), BalanceChanged(balance=balance)]
    assert v.ex.fetch_positions() == [held]
    assert v.ex.fetch_balance() == balance
    assert (v.ex.wallet_balance, v.ex.fees_paid) == (9999.8, 0.2)
    assert v.ex.fetch_fills() == [trade]
    assert v.ex.stats == EngineStats(orders_placed=1, rejects={}, fills={"taker": 1}, fill_notional=200.0)


def test_realized_pnl_accumulates_while_open_and_resets_on_a_flip_and_a_fresh_open(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("a", "BUY", 2.0)  # long 2 @ 100, fee 0.2
    v.clock.now = T0 + 10
    v.book(104.0, 104.5)
    v.place("b", "SELL", 0.5)  # realizes +2.0, fee 0.052
    assert v.ex.positions == {"BTCUSDT": PaperPosition(1.5, 100.0, 2.0, T0, T0 + 10)}
    v.clock.now = T0 + 20
    v.book(106.0, 106.5, mark=106.0)
    sold = v.place("c", "SELL", 0.5)  # realizes +3.0, fee 0.053
    assert sold.fills == [fill(v, 3, 3, "c", "SELL", 0.5, 106.0, fee=0.053, realized=3.0, ts=T0 + 20)]
    assert v.ex.fetch_positions() == [position("BTCUSDT", "LONG", 1.0, 100.0, 106.0, unrealized=6.0, margin=26.5,
                                               opened=T0, updated=T0 + 20, realized=5.0)]
    v.clock.now = T0 + 30
    v.book(98.0, 98.5, mark=98.0)
    flip = v.place("d", "SELL", 3.0)  # closes 1 at -2.0, opens short 2 @ 98; fee 0.294
    assert flip.fills == [fill(v, 4, 4, "d", "SELL", 3.0, 98.0, fee=0.294, realized=-2.0, ts=T0 + 30)]
    assert v.ex.positions == {"BTCUSDT": PaperPosition(-2.0, 98.0, 0.0, T0 + 30, T0 + 30)}
    v.sink.take()
    v.clock.now = T0 + 40
    v.book(96.5, 97.0, mark=97.0)
    v.place("e", "BUY", 2.0)  # closes the short at +2.0, fee 0.194: flat
    assert v.ex.positions == {}
    assert [e for e in v.sink.take() if isinstance(e, PositionChanged)] == [
        PositionChanged(symbol="BTCUSDT", position=None)]
    v.clock.now = T0 + 50
    v.place("f", "BUY", 0.25)  # a fresh open: nothing realized, opened now; fee 0.02425
    assert v.ex.positions == {"BTCUSDT": PaperPosition(0.25, 97.0, 0.0, T0 + 50, T0 + 50)}
    fees = 0.2 + 0.052 + 0.053 + 0.294 + 0.194 + 0.02425
    assert v.ex.fees_paid == pytest.approx(fees, abs=1e-12)
    assert v.ex.wallet_balance == pytest.approx(10_000.0 + 2.0 + 3.0 - 2.0 + 2.0 - fees, abs=1e-9)
    assert [f.realized_pnl for f in v.ex.fetch_fills()] == [0.0, 2.0, 3.0, -2.0, 2.0, 0.0]
    assert [f.trade_id for f in v.ex.fetch_fills()] == [f"{v.ex.epoch}-T{n}" for n in range(1, 7)]


def test_adding_to_a_position_keeps_what_it_realized_and_when_it_opened(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("a", "BUY", 1.5)
    v.clock.now = T0 + 10
    v.book(104.0, 104.5)
    v.place("b", "SELL", 0.5)  # long 1.0, realized 2.0
    v.clock.now = T0 + 20
    v.place("c", "BUY", 0.25)
    pos = v.ex.positions["BTCUSDT"]
    assert (pos.qty, pos.entry_price, pos.realized_pnl, pos.opened_at, pos.updated_at) == (
        1.25, pytest.approx(100.9), 2.0, T0, T0 + 20)
    assert v.ex.stats == EngineStats(orders_placed=3, fills={"taker": 3}, fill_notional=228.125)


def test_a_short_position_and_its_unrealized_pnl(open_venue) -> None:
    v = open_venue()
    v.book(100.0, 100.5, mark=96.0)
    v.place("s", "SELL", 1.0)
    assert v.ex.fetch_positions() == [position("BTCUSDT", "SHORT", 1.0, 100.0, 96.0, unrealized=4.0, margin=24.0,
                                               opened=T0, updated=T0)]
    assert v.ex.fetch_balance().unrealized_pnl == 4.0


def test_fees_round_to_1e_10_and_realized_pnl_in_the_fill_to_1e_10(open_venue) -> None:
    v = open_venue(taker_fee_bps=10.0 / 3)
    v.book(99.5, 100.0)
    assert v.place("a", "BUY", 1.0).fills[0].fee == 0.0333333333
    v.book(100.0, 100.5)
    v.place("b", "BUY", 0.5)  # long 1.5 @ 100.1666...
    v.book(101.0, 101.5)
    [closing] = v.place("c", "SELL", 0.25).fills
    assert closing.realized_pnl == 0.2083333333  # (101 - 100.1666...) * 0.25
    assert closing.fee == 0.0084166667


def test_the_balance_rounds_each_figure_to_1e_8(open_venue) -> None:
    v = open_venue(leverage=3.0, taker_fee_bps=10.0 / 3, starting_balance=10_000.0)
    v.book(99.5, 100.0, mark=100.123456789)
    v.place("a", "BUY", 1.0)  # fee 0.0333333333
    v.place("r", "BUY", 0.25, price=99.5, post_only=True)  # rests: order margin 0.25 * 99.5 / 3
    assert v.ex.fetch_balance() == Balance(
        wallet_balance=9999.96666667, unrealized_pnl=0.12345679, margin_balance=10000.09012346,
        position_margin=33.37448560, order_margin=8.29166667, available_balance=9958.42397119,
        fees_paid=0.03333333, ts=at(T0))


def test_partial_fills_average_their_prices_and_an_order_is_filled_within_half_a_lot(open_venue) -> None:
    v = open_venue()
    v.book(99.0, 100.0, ask_qty=1.0)  # level step 0.5 (half the spread)
    order = v.place("l", "BUY", 3.25, price=101.0)  # takes 1 @ 100, 100.5, 101: 0.25 rests
    assert [(f.qty, f.price) for f in order.fills] == [(1.0, 100.0), (1.0, 100.5), (1.0, 101.0)]
    assert (order.status, order.filled_qty, order.avg_price, order.is_open) == ("PARTIALLY_FILLED", 3.0, 100.5, True)
    v.book(100.5, 101.5)
    assert v.tick() == 0  # the ask is above the limit; at the touch, but no touch fills (rate 0)
    v.book(100.0, 101.0, ask_qty=1.0)
    assert v.tick() == 1  # crossed: the last lot fills as maker at its limit
    order = v.ex.fetch_order("BTCUSDT", "l")
    assert (order.status, order.filled_qty, order.avg_price) == ("FILLED", 3.25, 100.53846153846153)
    assert order.fills[-1] == fill(v, 4, 1, "l", "BUY", 0.25, 101.0, fee=0.0063125, liquidity="maker", ts=T0 + 2)


# --- taking liquidity: levels, sizes, limits ------------------------------------------------------------


@pytest.mark.parametrize(("bid", "ask", "prices"), [
    (99.0, 100.0, [100.0, 100.5, 101.0]),  # half the spread: 0.5
    (98.0, 100.0, [100.0, 101.0, 102.0]),  # half the spread: 1.0
    (98.5, 100.0, [100.0, 101.0, 102.0]),  # 0.75 rounds to the tick: 1.0
    (99.5, 100.0, [100.0, 100.5, 101.0]),  # 0.25 rounds to 0: one tick
])
def test_a_market_buy_walks_up_the_book_by_half_the_spread_per_level(open_venue, bid, ask, prices) -> None:
    v = open_venue()
    v.book(bid, ask, ask_qty=1.0, bid_qty=1.0)
    order = v.place("m", "BUY", 2.5)
    assert [(f.qty, f.price) for f in order.fills] == [(1.0, prices[0]), (1.0, prices[1]), (0.5, prices[2])]
    assert order.avg_price == (prices[0] + prices[1] + prices[2] / 2) / 2.5
    v.book(bid, ask, ask_qty=1.0, bid_qty=1.0)
    sold = v.place("s", "SELL", 2.5)  # back down from the bid by the same step
    step = prices[1] - prices[0]
    assert [(f.qty, f.price) for f in sold.fills] == [(1.0, bid), (1.0, bid - step), (0.5, bid - 2 * step)]


def test_a_crossing_limit_takes_up_to_its_price_and_rests_the_rest(open_venue) -> None:
    v = open_venue()
    v.book(99.0, 100.0, ask_qty=1.0, bid_qty=1.0)
    buy = v.place("lb", "BUY", 5.0, price=101.0)
    assert [f.price for f in buy.fills] == [100.0, 100.5, 101.0]
    assert (buy.status, buy.filled_qty, buy.remaining_qty) == ("PARTIALLY_FILLED", 3.0, 2.0)
    sell = v.place("ls", "SELL", 5.0, price=98.0)
    assert [f.price for f in sell.fills] == [99.0, 98.5, 98.0]
    assert (sell.status, sell.filled_qty) == ("PARTIALLY_FILLED", 3.0)
    assert v.ex.open_order_count == 2
    under = v.place("lu", "BUY", 1.0, price=99.5)  # under the ask: rests without a fill
    assert (under.status, under.fills) == ("NEW", [])


def test_the_last_partial_fill_leaving_one_lot_keeps_the_order_open(open_venue) -> None:
    v = open_venue()
    v.book(99.0, 100.0, ask_qty=0.75)
    order = v.place("p", "BUY", 1.0, price=100.0)
    assert (order.status, order.filled_qty, order.remaining_qty) == ("PARTIALLY_FILLED", 0.75, 0.25)


@pytest.mark.parametrize(("ask_qty", "status", "reason", "filled"), [
    (1.0, "CANCELED", "insufficient_liquidity", 50.0),
    (0.0, "CANCELED", "no_liquidity", 0.0),
    (0.1, "CANCELED", "no_liquidity", 0.0),  # under half a lot at the touch
])
def test_a_market_order_takes_at_most_fifty_levels_and_cancels_the_rest(open_venue, ask_qty, status, reason,
                                                                        filled) -> None:
    v = open_venue(starting_balance=1_000_000.0)
    v.book(99.0, 100.0, ask_qty=ask_qty)
    order = v.place("big", "BUY", 60.0)
    assert (order.status, order.reason, order.filled_qty, len(order.fills)) == (status, reason, filled, filled)
    assert MAX_BOOK_LEVELS == 50
    assert order.fills[-1:] == ([fill(v, 50, 1, "big", "BUY", 1.0, 124.5, fee=0.1245)] if filled else [])
    assert v.ex.open_order_count == 0


def test_a_market_sell_stops_at_a_zero_price(open_venue) -> None:
    v = open_venue()
    v.book(1.0, 2.0, bid_qty=0.25)  # step 0.5: 1.0, 0.5, then 0.0 is no price
    order = v.place("cheap", "SELL", 5.0)
    assert [(f.qty, f.price) for f in order.fills] == [(0.25, 1.0), (0.25, 0.5)]  # some filled, if under 1
    assert (order.status, order.reason) == ("CANCELED", "insufficient_liquidity")


def test_a_market_order_taking_one_lot_fills(open_venue) -> None:
    v = open_venue()
    v.book(99.0, 100.0, ask_qty=1.0)
    assert v.place("one", "BUY", 0.25).fills == [fill(v, 1, 1, "one", "BUY", 0.25, 100.0, fee=0.025)]


def test_a_market_order_goes_to_the_next_level_for_its_last_lot(open_venue) -> None:
    v = open_venue()
    v.book(99.0, 100.0, ask_qty=1.0)
    order = v.place("two", "BUY", 1.25)
    assert [(f.qty, f.price) for f in order.fills] == [(1.0, 100.0), (0.25, 100.5)]
    assert (order.status, order.avg_price) == ("FILLED", 100.1)
    assert v.ex.stats == EngineStats(orders_placed=1, fills={"taker": 2}, fill_notional=125.125)


# --- placing: idempotency, rejects at and just past each boundary ----------------------------------------


def test_placing_again_returns_the_order_as_it_is_whatever_the_request(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    first = v.place("same", "BUY", 1.0)
    v.book(200.0, 200.5)
    assert v.place("same", "SELL", 3.0) == first
    assert v.place("same", "BUY", 0.1) == first  # not even checked against the lot
    assert v.ex.stats == EngineStats(orders_placed=1, rejects={}, fills={"taker": 1}, fill_notional=100.0)
    assert len(v.ex.fetch_fills()) == 1


def test_qty_is_floored_to_the_lot_and_refused_under_one_lot(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    assert v.reject("q1", "BUY", 0.2499) == ("qty_below_lot", "qty 0.2499 below lot size 0.25")
    assert v.reject("q2", "BUY", 0.0001, price=99.0) == ("qty_below_lot", "qty 0.0001 below lot size 0.25")
    assert v.place("q3", "BUY", 0.25).filled_qty == 0.25
    assert v.place("q4", "BUY", 0.7499).qty == 0.5
    assert v.ex.stats.rejects == {"qty_below_lot": 2}


def test_a_limit_price_is_rounded_to_the_tick(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    assert v.place("p1", "BUY", 1.0, price=98.7).price == 98.5
    assert v.place("p2", "BUY", 1.0, price=98.8).price == 99.0


def test_the_simulated_overload_rejects_when_the_seeded_draw_is_under_reject_prob(open_venue) -> None:
    draw = random.Random("11:place:o-1").random()  # 0.2639...; "o-2" draws 0.2380...
    v = open_venue(reject_prob=draw)
    v.book(99.5, 100.0)
    assert v.reject("o-2", "BUY", 0.25) == ("overloaded", "simulated exchange overload (-1008); retry")
    assert v.place("o-1", "BUY", 0.25).status == "FILLED"  # a draw equal to reject_prob passes
    assert v.ex.stats.rejects == {"overloaded": 1}


def test_reduce_only_needs_a_position_on_the_other_side(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    assert v.reject("r1", "SELL", 1.0, reduce_only=True) == (
        "reduce_only_rejected", "no BTCUSDT position this order would reduce")
    v.place("long", "BUY", 0.5)
    assert v.reject("r2", "BUY", 1.0, reduce_only=True) == (
        "reduce_only_rejected", "no BTCUSDT position this order would reduce")
    v.place("flip", "SELL", 1.5)  # short 1.0
    assert v.reject("r3", "SELL", 1.0, reduce_only=True)[0] == "reduce_only_rejected"
    bought = v.place("r4", "BUY", 1.0, reduce_only=True)
    assert bought.fills == [fill(v, 3, 3, "r4", "BUY", 1.0, 100.0, fee=0.1, realized=-0.5, reduce_only=True)]
    assert v.ex.positions == {}
    assert v.ex.stats.rejects == {"reduce_only_rejected": 3}


def test_reduce_only_is_clamped_to_the_position_and_skips_the_notional_and_margin_checks(open_venue) -> None:
    v = open_venue(starting_balance=40.0, instruments={"BTCUSDT": BTC.model_copy(update={"min_notional": 20.0}),
                                                       "ETHUSDT": ETH})
    v.book(99.5, 100.0)
    v.place("open", "BUY", 0.75)  # 75 notional, margin 18.75 of 40
    v.book(10.0, 10.5)
    order = v.place("close", "SELL", 2.0, reduce_only=True)  # 7.5 notional, under the minimum
    assert (order.qty, order.status, order.filled_qty) == (0.75, "FILLED", 0.75)
    assert v.ex.positions == {}


def test_a_position_under_the_lot_is_the_most_reduce_only_can_ask_for(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("open", "BUY", 0.25)
    v.ex.close()
    v = open_venue(instruments={"BTCUSDT": BTC.model_copy(update={"lot_size": 1.0}), "ETHUSDT": ETH})
    v.book(99.5, 100.0)  # the lot grew to 1.0 across the restart: 0.25 is under one lot
    order = v.place("close", "SELL", 1.0, reduce_only=True)  # clamped to 0.25, which takes no level (under half a lot)
    assert (order.qty, order.status, order.reason, order.fills) == (0.25, "CANCELED", "no_liquidity", [])
    assert v.ex.positions["BTCUSDT"].qty == 0.25


def test_a_plain_order_that_only_reduces_skips_the_minimum_notional(open_venue) -> None:
    v = open_venue(instruments={"BTCUSDT": BTC.model_copy(update={"min_notional": 20.0}), "ETHUSDT": ETH})
    v.book(99.5, 100.0)
    v.place("open", "BUY", 0.5)
    v.book(60.0, 60.5)
    assert v.place("part", "SELL", 0.25).status == "FILLED"  # 15 notional, but it only reduces
    v.book(30.0, 30.5)
    assert v.reject("flip", "SELL", 0.5) == ("min_notional", "notional 15.00 below minimum 20.0")
    assert v.place("all", "SELL", 0.25).status == "FILLED"  # exactly the position: 7.5 notional
    assert v.ex.positions == {}


def test_min_notional_at_the_boundary_uses_the_limit_else_the_side_of_the_book(open_venue) -> None:
    v = open_venue(instruments={"BTCUSDT": BTC.model_copy(update={"min_notional": 25.0}), "ETHUSDT": ETH})
    v.book(99.5, 100.0)
    assert v.place("at", "BUY", 0.25).status == "FILLED"  # 0.25 x ask 100 = 25.0
    v.place("flat", "SELL", 0.25)
    assert v.reject("sell", "SELL", 0.25) == ("min_notional", "notional 24.88 below minimum 25.0")  # x bid 99.5
    assert v.reject("lim", "BUY", 0.25, price=99.5) == ("min_notional", "notional 24.88 below minimum 25.0")
    assert v.place("lim2", "SELL", 0.25, price=100.0).status == "NEW"  # 0.25 x 100 = 25.0
    assert v.ex.stats.rejects == {"min_notional": 2}


def test_margin_needed_is_the_new_exposure_at_leverage_plus_the_taker_fee(open_venue) -> None:
    v = open_venue(starting_balance=251.0)
    v.book(99.5, 100.0)
    assert v.reject("over", "BUY", 10.25) == ("insufficient_margin", "needs 257.27 margin, 251.00 available")
    order = v.place("exact", "BUY", 10.0)  # 1000 / 4 + 1000 x 10 bps = 251.0: exactly what is available
    assert order.status == "FILLED"
    assert v.ex.stats.rejects == {"insufficient_margin": 1}


def test_margin_a_hair_short_of_the_need_is_refused(open_venue) -> None:
    v = open_venue(starting_balance=250.99995)
    v.book(99.5, 100.0)
    assert v.reject("short", "BUY", 10.0) == ("insufficient_margin", "needs 251.00 margin, 251.00 available")


def test_margin_for_a_flip_counts_only_the_size_past_the_position(open_venue) -> None:
    v = open_venue(starting_balance=1_000.0)
    v.book(99.5, 100.0)
    v.place("long", "BUY", 1.0)  # wallet 999.9
    v.book(100.0, 100.5, mark=100.0)  # available 999.9 - 25 = 974.9
    assert v.reject("far", "SELL", 40.0) == ("insufficient_margin", "needs 978.90 margin, 974.90 available")
    assert v.place("flip", "SELL", 39.0).status == "FILLED"  # 38 past the position: 953.8
    assert v.ex.positions["BTCUSDT"].qty == -38.0


def test_resting_orders_hold_margin_but_reduce_only_ones_do_not(open_venue) -> None:
    v = open_venue(starting_balance=1_000.0)
    v.book(99.5, 100.0, mark=100.0)
    v.place("long", "BUY", 1.0)  # wallet 999.9, margin 25
    v.place("rest", "BUY", 2.0, price=90.0)  # order margin 45
    v.place("tp", "SELL", 1.0, price=120.0, reduce_only=True)  # no margin
    assert v.ex.fetch_balance() == Balance(
        wallet_balance=999.9, unrealized_pnl=0.0, margin_balance=999.9, position_margin=25.0, order_margin=45.0,
        available_balance=929.9, fees_paid=0.1, ts=at(T0))
    v.ex.cancel_order("BTCUSDT", "rest")
    assert v.ex.fetch_balance().order_margin == 0.0


def test_post_only_is_refused_when_it_would_take_and_rests_one_tick_away(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    assert v.reject("pb", "BUY", 1.0, price=100.0, post_only=True) == (
        "post_only_would_cross", "post-only BUY at 100.0 would take (bid 99.5 ask 100.0)")
    assert v.reject("ps", "SELL", 1.0, price=99.5, post_only=True) == (
        "post_only_would_cross", "post-only SELL at 99.5 would take (bid 99.5 ask 100.0)")
    new = Order(order_id=f"{v.ex.epoch}-O1", client_order_id="rb", symbol="BTCUSDT", side="BUY", order_type="LIMIT",
                status="NEW", qty=1.0, price=99.5, post_only=True, created_at=at(T0), updated_at=at(T0))
    assert v.place("rb", "BUY", 1.0, price=99.5, post_only=True) == new
    assert v.place("rs", "SELL", 1.0, price=100.0, post_only=True).status == "NEW"
    assert v.ex.stats.rejects == {"post_only_would_cross": 2}
    assert v.ex.fetch_fills() == []


def test_a_plain_limit_at_the_touch_takes(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    assert v.place("tb", "BUY", 1.0, price=100.0).fills[0].price == 100.0
    assert v.place("ts", "SELL", 1.0, price=99.5).fills[0].price == 99.5
    assert v.place("nb", "BUY", 1.0, price=99.5).status == "NEW"
    assert v.place("ns", "SELL", 1.0, price=100.0).status == "NEW"


def test_unknown_symbols_are_bad_requests_everywhere(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    detail = "DOGEUSDT is not listed (listed: BTCUSDT, ETHUSDT)"
    calls = [lambda: v.place("u", "BUY", 1.0, symbol="DOGEUSDT"), lambda: v.ex.fetch_tops(["BTCUSDT", "DOGEUSDT"]),
             lambda: v.ex.fetch_bars("DOGEUSDT", 5), lambda: v.ex.fetch_orders("DOGEUSDT"),
             lambda: v.ex.fetch_fills(symbol="DOGEUSDT")]
    for call in calls:
        with pytest.raises(BadRequest) as caught:
            call()
        assert (caught.value.code, caught.value.detail) == ("unknown_symbol", detail)
    assert v.ex.stats == EngineStats()


# --- resting orders: crossed, at the touch, deterministic by seed ------------------------------------------


def test_a_resting_buy_fills_as_maker_at_its_price_once_the_ask_is_within_half_a_tick(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("rb", "BUY", 1.0, price=99.0, post_only=True)
    v.book(99.0, 99.375)  # the ask 0.375 over the limit: not crossed (at the touch, but rate 0)
    assert v.tick() == 0
    v.sink.take()
    v.book(98.5, 99.25)  # 0.25 over the limit: crossed
    assert v.tick() == 1
    trade = fill(v, 1, 1, "rb", "BUY", 1.0, 99.0, fee=0.02475, liquidity="maker", ts=T0 + 2)
    events = v.sink.take()
    assert events[:2] == [TradeExecuted(fill=trade), OrderChanged(order=v.ex.fetch_order("BTCUSDT", "rb").model_copy(
        update={"fills": []}))]
    assert v.ex.fetch_order("BTCUSDT", "rb") == Order(
        order_id=f"{v.ex.epoch}-O1", client_order_id="rb", symbol="BTCUSDT", side="BUY", order_type="LIMIT",
        status="FILLED", qty=1.0, price=99.0, filled_qty=1.0, avg_price=99.0, post_only=True, created_at=at(T0),
        updated_at=at(T0 + 2), fills=[trade])
    assert v.ex.stats.fills == {"maker": 1}


def test_a_resting_sell_fills_once_the_bid_is_within_half_a_tick(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("rs", "SELL", 1.0, price=101.0, post_only=True)
    v.book(100.625, 101.0)  # the bid 0.375 under the limit: not crossed
    assert v.tick() == 0
    v.book(100.75, 101.25)  # 0.25 under: crossed
    assert v.tick() == 1
    assert v.ex.fetch_fills() == [fill(v, 1, 1, "rs", "SELL", 1.0, 101.0, fee=0.02525, liquidity="maker", ts=T0 + 2)]


def test_at_the_touch_an_order_fills_in_seeded_parts_and_the_last_lot_whole(open_venue) -> None:
    v = open_venue(touch_fill_rate_per_s=100.0)  # a fill chance every step
    v.book(99.5, 100.0)
    v.place("e", "BUY", 1.0, price=99.5, post_only=True)
    seen = []
    for _ in range(3):
        v.book(99.5, 100.0)
        assert v.tick() == 1
        order = v.ex.fetch_order("BTCUSDT", "e")
        seen.append((order.fills[-1].qty, order.status, order.filled_qty))
    # step 1 takes 0.25; step 2 0.5, leaving one lot (kept: not under half a lot); step 3 the last lot whole
    assert seen == [(0.25, "PARTIALLY_FILLED", 0.25), (0.5, "PARTIALLY_FILLED", 0.75), (0.25, "FILLED", 1.0)]
    assert [f.ts for f in order.fills] == [at(T0 + 1), at(T0 + 2), at(T0 + 3)]
    assert v.tick() == 0


@pytest.mark.parametrize(("side", "price", "bid", "ask", "fills"), [
    ("BUY", 99.0, 99.25, 100.0, 1),  # the bid 0.25 over the order: at the touch
    ("BUY", 99.0, 99.375, 100.0, 0),
    ("SELL", 101.0, 100.0, 100.75, 1),  # the ask 0.25 under the order
    ("SELL", 101.0, 100.0, 100.625, 0),
])
def test_the_touch_reaches_half_a_tick_behind_the_best_price(open_venue, side, price, bid, ask, fills) -> None:
    v = open_venue(touch_fill_rate_per_s=100.0)
    v.book(99.5, 100.0)
    v.place("e", side, 1.0, price=price, post_only=True)
    v.book(bid, ask)
    assert v.tick() == fills
    assert [(f.qty, f.price) for f in v.ex.fetch_fills()] == [(0.25, price)] * fills


def test_touch_fills_come_at_the_rate_per_step(open_venue) -> None:
    v = open_venue(touch_fill_rate_per_s=2.0)  # 1 - exp(-2 x 0.25) = 39.3% a step
    v.book(99.5, 100.0)
    v.place("a", "BUY", 25.0, price=99.5, post_only=True)
    v.place("t3", "BUY", 25.0, price=99.5, post_only=True)
    made = []
    for _ in range(4):
        v.book(99.5, 100.0)
        made.append(v.tick())
    # the seeded draws of "a": 0.199, 0.004, 0.468, 0.349; of "t3": 0.120, 0.708, 0.233, 0.358
    assert made == [2, 1, 1, 2]
    assert [f.qty for f in v.ex.fetch_fills() if f.client_order_id == "a"] == [13.75, 5.75, 2.5]


def test_resting_orders_fill_in_client_order_id_order_and_tick_counts_them(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    for cid in ("c", "a", "b"):
        v.place(cid, "BUY", 1.0, price=99.0, post_only=True)
    v.place("0-far", "BUY", 1.0, price=90.0, post_only=True)  # first in order, and neither crossed nor at the touch
    v.book(98.5, 99.0)
    assert v.tick() == 3
    assert [(f.trade_id, f.client_order_id) for f in v.ex.fetch_fills()] == [
        (f"{v.ex.epoch}-T{n}", cid) for n, cid in ((1, "a"), (2, "b"), (3, "c"))]
    assert v.ex.open_order_count == 1


def test_a_resting_reduce_only_order_is_clamped_then_canceled_when_nothing_is_left(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("long", "BUY", 1.0)
    v.place("tp", "SELL", 1.0, price=105.0, reduce_only=True)
    v.place("cut", "SELL", 0.75)  # long 0.25 left
    v.book(105.0, 105.5)
    v.clock.now = T0 + 5
    assert v.ex.tick() == 1
    order = v.ex.fetch_order("BTCUSDT", "tp")
    assert (order.status, order.filled_qty, [f.qty for f in order.fills]) == ("PARTIALLY_FILLED", 0.25, [0.25])
    assert order.fills[0] == fill(v, 3, 2, "tp", "SELL", 0.25, 105.0, fee=0.0065625, liquidity="maker",
                                  realized=1.25, reduce_only=True, ts=T0 + 5)
    v.sink.take()
    v.book(105.0, 105.5)
    v.clock.now = T0 + 6
    assert v.ex.tick() == 0
    canceled = order.model_copy(update={"status": "CANCELED", "reason": "reduce_only_no_position",
                                        "updated_at": at(T0 + 6)})
    assert v.ex.fetch_order("BTCUSDT", "tp") == canceled
    assert v.sink.take() == [OrderChanged(order=canceled.model_copy(update={"fills": []}))]
    assert v.ex.open_order_count == 0


# --- the clock: market events, saved bars, pruning ------------------------------------------------------------


def test_a_tick_pushes_closed_bars_then_every_top_and_only_when_the_market_moved(open_venue) -> None:
    v = open_venue()
    assert v.ex.next_step_at() is None  # venue data drives the steps
    btc = v.book(99.5, 100.0)
    eth = v.market.top("ETHUSDT")
    bar = Bar(ts=at(T0 - 60), open=99.0, high=101.0, low=98.5, close=99.5)
    v.market.on_bar("BTCUSDT", bar)
    assert v.tick() == 0
    assert v.sink.market_events == [BarClosed(symbol="BTCUSDT", bar=bar), BookTicked(top=btc), BookTicked(top=eth)]
    assert v.market.closed == []
    assert v.tick() == 0  # nothing new from the venue: no step, no events
    assert len(v.sink.market_events) == 3
    v.book(99.0, 99.5)
    v.tick()
    assert [type(e) for e in v.sink.market_events[3:]] == [BookTicked, BookTicked]  # the bar is not pushed again
    assert v.ex.fetch_bars("BTCUSDT", 5) == [bar]
    assert v.ex.fetch_tops(["ETHUSDT"]) == {"ETHUSDT": eth}


def test_the_simulated_market_is_saved_when_a_bar_closes_and_on_save(open_exchange) -> None:
    ex, clock = open_exchange()
    saved = ex.store.get("market")["step"]
    assert saved == ex.market.step
    assert ex.next_step_at() == ex.market.last_step_ts + 0.25
    for _ in range(19):  # to 4.75 s: the bar that opened at T0 is still open (5 s bars)
        clock.now += 0.25
        ex.tick()
    assert (ex.market.step, ex.store.get("market")["step"]) == (saved + 19, saved)
    clock.now += 0.25
    ex.tick()  # a bar closed: saved
    assert ex.store.get("market")["step"] == saved + 20
    clock.now += 0.25
    ex.tick()
    assert ex.store.get("market")["step"] == saved + 20
    ex.save()
    assert ex.store.get("market") == ex.market.dump()


def test_a_tick_over_many_steps_counts_the_fills_of_every_step(open_exchange) -> None:
    ex, clock = open_exchange(touch_fill_rate_per_s=100.0)
    top = ex.fetch_tops(["ETHUSDT"])["ETHUSDT"]
    for side, price in (("BUY", top.bid), ("SELL", top.ask)):
        ex.place_order(OrderRequest(client_order_id=f"t-{side}", symbol="ETHUSDT", side=side, order_type="LIMIT",
                                    qty=3.0, price=price, post_only=True))
    clock.now += 2.0  # eight steps in one tick
    made = ex.tick()
    assert made == len(ex.fetch_fills()) and len({f.ts for f in ex.fetch_fills()}) > 1


def test_a_tick_at_a_given_time_fills_at_that_time(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("r", "BUY", 1.0, price=99.0, post_only=True)
    v.book(98.5, 99.0)
    assert v.ex.tick(T0 + 7) == 1
    assert v.ex.fetch_fills()[0].ts == at(T0 + 7)


def test_closed_orders_are_pruned_a_day_after_their_last_change_checking_hourly(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("old", "BUY", 1.0, price=90.0)
    v.ex.cancel_order("BTCUSDT", "old")
    v.place("open", "BUY", 1.0, price=90.0)
    v.ex.tick(T0)  # the first tick prunes (nothing is old yet)
    v.clock.now = T0 + 1
    v.place("newer", "BUY", 1.0, price=90.0)
    v.ex.cancel_order("BTCUSDT", "newer")
    assert (ORDER_RETENTION_S, PRUNE_EVERY_S) == (86_400.0, 3_600.0)
    v.ex.tick(T0 + 86_400)  # cutoff T0: "old" changed exactly then, kept
    assert set(v.ex.orders) == {"old", "open", "newer"}
    v.ex.tick(T0 + 86_400 + 3_599)  # within the hour: no pruning
    assert set(v.ex.orders) == {"old", "open", "newer"}
    v.ex.tick(T0 + 86_400 + 3_600)  # cutoff T0 + 3600
    assert set(v.ex.orders) == {"open"}
    with pytest.raises(OrderNotFound):
        v.ex.fetch_order("BTCUSDT", "old")
    assert [o.client_order_id for o in v.ex.store.orders()] == ["open"]


def test_a_reopened_engine_prunes_on_its_first_tick(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("old", "BUY", 1.0, price=90.0)
    v.ex.cancel_order("BTCUSDT", "old")
    v.ex.close()
    v.clock.now = T0 + 86_400 + 1
    again = open_venue()
    assert set(again.ex.orders) == {"old"}
    again.book(99.5, 100.0)
    again.ex.tick()
    assert again.ex.orders == {} and again.ex.store.orders() == []


# --- persistence -------------------------------------------------------------------------------------------


def test_a_fresh_engine_saves_its_account_and_epoch_at_once(open_venue) -> None:
    v = open_venue(starting_balance=1234.5)
    assert re.fullmatch(r"[0-9a-f]{6}", v.ex.epoch)
    assert v.ex.store.get("account") == {"wallet_balance": 1234.5, "fees_paid": 0.0}
    assert v.ex.store.get("counters") == {"epoch": v.ex.epoch, "order_seq": 0, "trade_seq": 0}
    assert v.ex.store.get("positions") == {}
    assert v.ex.store.get("market") == {}
    epoch = v.ex.epoch
    v.ex.close()
    again = open_venue(starting_balance=999.0)  # the saved account wins
    assert (again.ex.epoch, again.ex.wallet_balance, again.ex.fees_paid) == (epoch, 1234.5, 0.0)


def test_account_positions_counters_and_orders_survive_a_reopen(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("a", "BUY", 2.0)
    v.clock.now = T0 + 10
    v.book(104.0, 104.5)
    v.place("b", "SELL", 0.5)
    v.place("rest", "BUY", 1.0, price=95.0, post_only=True)  # no fill: the order counter is saved too
    before = (v.ex.wallet_balance, v.ex.fees_paid, v.ex.positions, v.ex.orders, v.ex.epoch)
    assert v.ex.store.get("counters") == {"epoch": v.ex.epoch, "order_seq": 3, "trade_seq": 2}
    v.ex.close()
    again = open_venue()
    assert (again.ex.wallet_balance, again.ex.fees_paid, again.ex.positions, again.ex.orders, again.ex.epoch) == before
    assert again.ex.positions == {"BTCUSDT": PaperPosition(1.5, 100.0, 2.0, T0, T0 + 10)}
    assert (again.ex.order_seq, again.ex.trade_seq, again.ex.open_order_count) == (3, 2, 1)
    again.book(94.0, 95.0)
    assert again.tick() == 1  # the reloaded resting order still matches
    assert again.ex.fetch_fills()[-1].trade_id == f"{again.ex.epoch}-T3"
    assert again.place("c", "BUY", 0.25).order_id == f"{again.ex.epoch}-O4"


def test_instruments_default_to_the_paper_settings_of_the_listed_symbols(tmp_path) -> None:
    settings = paper_settings(instruments={"BTCUSDT": {"min_notional": 7.0}})
    ex = PaperExchange(settings, ["BTCUSDT", "DOGEUSDT"], PaperStore(tmp_path / "x.db"), Clock(T0),
                       market=VenueMarket(["BTCUSDT", "DOGEUSDT"]))
    try:
        assert ex.instruments() == {"BTCUSDT": Instrument(symbol="BTCUSDT", tick_size=0.1, lot_size=0.001,
                                                          min_notional=7.0)}
        assert ex.symbols == ["BTCUSDT", "DOGEUSDT"]
        assert ex.wallet_balance == 10_000.0
    finally:
        ex.close()


def test_positions_saved_without_their_times_read_as_unknown_open_time(tmp_path) -> None:
    store = PaperStore(tmp_path / "x.db")
    store.put("positions", {"BTCUSDT": {"qty": -0.5, "entry_price": 100.0},
                            "ETHUSDT": {"qty": 1.0, "entry_price": 2000.0, "opened_at": T0 - 100}})
    store.close()
    ex = PaperExchange(paper_settings(**RATES), ["BTCUSDT", "ETHUSDT"], PaperStore(tmp_path / "x.db"), Clock(T0),
                       market=VenueMarket(["BTCUSDT", "ETHUSDT"]), instruments=INSTRUMENTS)
    try:
        for top in (BookTop(symbol="BTCUSDT", bid=99.5, ask=100.0, bid_qty=1.0, ask_qty=1.0, mark=96.0, ts=at(T0)),
                    BookTop(symbol="ETHUSDT", bid=2000.0, ask=2000.5, bid_qty=1.0, ask_qty=1.0, mark=2010.0,
                            ts=at(T0))):
            ex.market.on_book(top)
        assert ex.fetch_positions() == [
            ExchangePosition(symbol="BTCUSDT", side="SHORT", qty=0.5, entry_price=100.0, mark_price=96.0,
                             unrealized_pnl=2.0, realized_pnl=0.0, leverage=4.0, margin=12.0, opened_at=None,
                             updated_at=at(0.0)),
            position("ETHUSDT", "LONG", 1.0, 2000.0, 2010.0, unrealized=10.0, margin=502.5, opened=T0 - 100,
                     updated=T0 - 100)]
        assert ex.fetch_balance() == Balance(
            wallet_balance=10_000.0, unrealized_pnl=12.0, margin_balance=10_012.0, position_margin=514.5,
            order_margin=0.0, available_balance=9497.5, fees_paid=0.0, ts=at(T0))
    finally:
        ex.close()


# --- cancel, fetch, snapshot -------------------------------------------------------------------------------------


def test_cancel_marks_an_open_order_canceled_now_and_leaves_a_closed_one(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    placed = v.place("r", "BUY", 1.0, price=95.0)
    v.place("m", "BUY", 0.25)
    for symbol, cid in (("BTCUSDT", "nope"), ("ETHUSDT", "r")):
        for call in (v.ex.cancel_order, v.ex.fetch_order):
            with pytest.raises(OrderNotFound) as caught:
                call(symbol, cid)
            assert (caught.value.code, caught.value.detail) == ("unknown_order", f"{symbol} {cid}")
    v.sink.take()
    v.clock.now = T0 + 3
    canceled = placed.model_copy(update={"status": "CANCELED", "reason": "canceled", "updated_at": at(T0 + 3)})
    assert v.ex.cancel_order("BTCUSDT", "r") == canceled
    assert v.sink.take() == [OrderChanged(order=canceled)]
    assert v.ex.open_order_count == 0
    assert v.ex.cancel_order("BTCUSDT", "r") == canceled  # already closed: as it is, nothing pushed
    filled = v.ex.fetch_order("BTCUSDT", "m")
    assert v.ex.cancel_order("BTCUSDT", "m") == filled
    assert v.sink.take() == []
    assert {o.client_order_id: o.status for o in v.ex.store.orders()} == {"r": "CANCELED", "m": "FILLED"}


def cids(orders: list[Order]) -> list[str]:
    return [o.client_order_id for o in orders]


def test_fetch_orders_filters_by_symbol_prefix_and_openness_in_time_order(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("x-2", "BUY", 1.0, price=95.0)
    v.clock.now = T0 + 1
    v.place("x-1", "BUY", 1.0, price=95.0)
    v.place("x-0", "BUY", 0.25)  # filled
    v.place("x-9", "BUY", 1.0, price=1990.0, symbol="ETHUSDT")
    v.clock.now = T0 + 2
    v.place("y-1", "BUY", 1.0, price=95.0)
    assert cids(v.ex.fetch_orders("BTCUSDT")) == ["x-2", "x-1", "x-0", "y-1"]
    assert cids(v.ex.fetch_orders("BTCUSDT", "x-")) == ["x-2", "x-1", "x-0"]
    assert cids(v.ex.fetch_orders("BTCUSDT", "x-", open_only=True)) == ["x-2", "x-1"]
    assert cids(v.ex.fetch_orders("ETHUSDT", open_only=True)) == ["x-9"]
    snapshot = v.ex.snapshot()
    assert snapshot == ExchangeSnapshot(
        tops={"BTCUSDT": v.market.top("BTCUSDT"), "ETHUSDT": v.market.top("ETHUSDT")},
        positions=v.ex.fetch_positions(), balance=v.ex.fetch_balance(),
        open_orders=[v.ex.orders[c] for c in ("x-2", "x-1", "x-9", "y-1")])


def test_fetch_fills_filters_by_time_and_symbol_up_to_a_limit(open_venue) -> None:
    v = open_venue()
    v.book(99.5, 100.0)
    v.place("a", "BUY", 0.25)
    v.clock.now = T0 + 1
    v.place("b", "BUY", 0.5, symbol="ETHUSDT")
    v.clock.now = T0 + 2
    v.place("c", "BUY", 0.25)
    assert [f.client_order_id for f in v.ex.fetch_fills()] == ["a", "b", "c"]
    assert [f.client_order_id for f in v.ex.fetch_fills(since=at(T0 + 1))] == ["b", "c"]
    assert [f.client_order_id for f in v.ex.fetch_fills(symbol="BTCUSDT")] == ["a", "c"]
    assert [f.client_order_id for f in v.ex.fetch_fills(limit=2)] == ["a", "b"]


def test_positions_are_listed_by_symbol_and_the_balance_sums_both_sides(open_venue) -> None:
    v = open_venue()
    v.book(2000.0, 2000.25, symbol="ETHUSDT", mark=2000.0)
    v.place("e", "SELL", 0.5, symbol="ETHUSDT")  # short 0.5 @ 2000, fee 1.0
    v.book(99.5, 100.0, mark=104.0)
    v.place("b", "BUY", 1.0)  # long 1 @ 100, fee 0.1
    v.book(1990.0, 1990.25, symbol="ETHUSDT", mark=1990.0)
    assert [p.symbol for p in v.ex.fetch_positions()] == ["BTCUSDT", "ETHUSDT"]
    assert v.ex.fetch_balance() == Balance(
        wallet_balance=9998.9, unrealized_pnl=9.0, margin_balance=10_007.9, position_margin=274.75,
        order_margin=0.0, available_balance=9733.15, fees_paid=1.1, ts=at(T0))
