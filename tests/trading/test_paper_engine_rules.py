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
from tests.trading.conftest import SYMBOLS, Clock, paper_settings

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
        return Venue(ex, clock, sink)

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
