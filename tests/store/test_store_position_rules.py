"""The store's bookkeeping around each fill, pinned field by field (issue 14).

test_position_rules.py and trading/test_position_arithmetic.py check the money (realized, fees,
cash flow) against a reference; this file pins everything else the store writes from a fill:
every field of the opened position, each audit `Change` (kind, id, side, sizes, price, realized,
fee), the `TradeClose` and its `ClosedTrade` record, the anomaly texts, the extremes and
excursions, and the `open_positions` view. Prices, sizes and fees are binary-exact so whole
objects compare with `==`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors.state_writer.store.positions import (
    Change,
    EntryInfo,
    FillResult,
    Position,
    TradeClose,
    apply_fill,
    open_position,
)
from bus.messages.views import ClosedTrade, StoredPosition

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T1, T2, T3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
ENTRY = EntryInfo(position_id="p1", tp=130.0, sl=80.0, ttl_ts=T0 + timedelta(hours=4), intent_id="i1",
                  signal_id="s1", arrival_mid=99.5)
SCOPE = {"mode": "SIM", "account": "paper", "symbol": "BTCUSDT"}


def fill(pos: Position | None, side: str, qty: float, price: float, *, fee: float, seq: int, when: datetime = T0,
         reduce_only: bool = False, entry: EntryInfo = ENTRY) -> FillResult:
    return apply_fill(pos, **SCOPE, side=side, qty=qty, price=price, fee=fee, reduce_only=reduce_only, when=when,
                      seq=seq, entry=entry)


def opened(side: str, qty: float, price: float, *, fee: float, seq: int, when: datetime = T0,
           info: EntryInfo = ENTRY, **changed: object) -> Position:
    """The position a first fill opens, written out field by field (not through `open_position`)."""
    fields: dict[str, object] = dict(
        **SCOPE, side=side, qty=qty, entry_price=price, entry_time=when, position_id=info.position_id,
        trade_min_price=price, trade_max_price=price, opened_seq=seq, updated_seq=seq, created_at=when,
        updated_at=when, tp=info.tp, sl=info.sl, ttl_ts=info.ttl_ts, entry_intent_id=info.intent_id,
        entry_signal_id=info.signal_id, entry_arrival_mid=info.arrival_mid, mark_price=price, peak_qty=qty,
        entry_qty_total=qty, entry_notional=qty * price, exit_qty_total=0.0, exit_notional=0.0,
        realized_pnl=0.0, fees=fee, source="fill")
    fields.update(changed)
    return Position(**fields)  # type: ignore[arg-type]


# --- opening --------------------------------------------------------------------------------------


def test_open_position_takes_every_field_from_the_fill_and_the_intent() -> None:
    p = open_position(**SCOPE, side="LONG", qty=2.0, price=100.0, when=T0, seq=7, info=ENTRY, fee=0.25,
                      source="reconcile")
    assert p == opened("LONG", 2.0, 100.0, fee=0.25, seq=7, source="reconcile")
    assert (p.mark_price, p.entry_arrival_mid, p.ttl_ts) == (100.0, 99.5, T0 + timedelta(hours=4))


def test_open_position_defaults_are_no_fee_and_a_fill_source() -> None:
    p = open_position(**SCOPE, side="SHORT", qty=1.0, price=50.0, when=T1, seq=3, info=EntryInfo(position_id="x"))
    assert (p.fees, p.source) == (0.0, "fill")
    assert (p.tp, p.sl, p.ttl_ts, p.entry_intent_id, p.entry_signal_id, p.entry_arrival_mid) == (None,) * 6


def test_a_first_fill_opens_with_one_open_change() -> None:
    r = fill(None, "SELL", 2.0, 100.0, fee=0.25, seq=3, when=T1)
    assert r == FillResult(
        position=opened("SHORT", 2.0, 100.0, fee=0.25, seq=3, when=T1),
        changes=[Change(kind="open", position_id="p1", side="SHORT", qty_before=0.0, qty_after=2.0, price=100.0,
                        fee=0.25)])


def test_a_reduce_only_fill_with_nothing_open_is_an_anomaly_and_changes_nothing() -> None:
    r = fill(None, "BUY", 1.0, 100.0, fee=0.25, seq=1, reduce_only=True)
    assert r == FillResult(position=None, anomaly="reduce-only fill with no open position in the store")


# --- add, reduce, close -----------------------------------------------------------------------------


def long_1_at_100() -> Position:
    r = fill(None, "BUY", 1.0, 100.0, fee=0.25, seq=1)
    assert r.position is not None
    return r.position


def test_an_add_averages_the_entry_and_keeps_the_trade() -> None:
    r = fill(long_1_at_100(), "BUY", 3.0, 120.0, fee=0.75, seq=2, when=T1)
    assert r == FillResult(
        position=opened("LONG", 4.0, 115.0, fee=1.0, seq=1, updated_seq=2, updated_at=T1,
                        trade_min_price=100.0, trade_max_price=120.0, mark_price=100.0, peak_qty=4.0,
                        entry_qty_total=4.0, entry_notional=460.0),
        changes=[Change(kind="add", position_id="p1", side="LONG", qty_before=1.0, qty_after=4.0, price=120.0,
                        fee=0.75)])


def test_a_reduction_realizes_and_keeps_the_average() -> None:
    pos = fill(long_1_at_100(), "BUY", 3.0, 120.0, fee=0.75, seq=2, when=T1).position
    r = fill(pos, "SELL", 1.0, 125.0, fee=0.5, seq=3, when=T2)
    assert r == FillResult(
        position=opened("LONG", 3.0, 115.0, fee=1.5, seq=1, updated_seq=3, updated_at=T2,
                        trade_min_price=100.0, trade_max_price=125.0, mark_price=100.0, peak_qty=4.0,
                        entry_qty_total=4.0, entry_notional=460.0,
                        exit_qty_total=1.0, exit_notional=125.0, realized_pnl=10.0),
        changes=[Change(kind="reduce", position_id="p1", side="LONG", qty_before=4.0, qty_after=3.0, price=125.0,
                        realized=10.0, fee=0.5)],
        realized=10.0)


def test_a_short_reduction_is_signed_by_its_direction() -> None:
    pos = fill(None, "SELL", 4.0, 100.0, fee=0.0, seq=1).position
    r = fill(pos, "BUY", 1.0, 90.0, fee=0.5, seq=2)
    assert r.realized == 10.0 and r.position is not None and r.position.qty == 3.0
    assert r.changes == [Change(kind="reduce", position_id="p1", side="SHORT", qty_before=4.0, qty_after=3.0,
                                price=90.0, realized=10.0, fee=0.5)]


def test_closing_the_rest_ends_the_trade_with_its_record() -> None:
    pos = fill(long_1_at_100(), "BUY", 3.0, 120.0, fee=0.75, seq=2, when=T1).position
    pos = fill(pos, "SELL", 1.0, 125.0, fee=0.5, seq=3, when=T2).position
    r = fill(pos, "SELL", 3.0, 105.0, fee=0.75, seq=4, when=T3)
    final = opened("LONG", 0.0, 115.0, fee=2.25, seq=1, updated_seq=4, updated_at=T3,
                   trade_min_price=100.0, trade_max_price=125.0, mark_price=100.0, peak_qty=4.0,
                   entry_qty_total=4.0, entry_notional=460.0, exit_qty_total=4.0,
                   exit_notional=440.0, realized_pnl=-20.0)
    assert r == FillResult(
        position=None,
        changes=[Change(kind="close", position_id="p1", side="LONG", qty_before=3.0, qty_after=0.0, price=105.0,
                        realized=-30.0, fee=0.75)],
        closed=TradeClose(position=final, exit_time=T3, seq=4, reason="fill"),
        realized=-30.0)
    assert r.closed is not None
    # Extremes 100..125 against the average entry 115 at the largest size held (4).
    assert r.closed.record() == ClosedTrade(
        **SCOPE, side="LONG", position_id="p1", qty=4.0, entry_time=T0, entry_price=115.0, exit_time=T3,
        exit_price=110.0, realized_gross=-20.0, fees=2.25, realized_net=-22.25, mae=60.0, mfe=40.0,
        trade_min_price=100.0, trade_max_price=125.0, close_reason="fill", closed_seq=4)


# --- flips ------------------------------------------------------------------------------------------


def test_a_flip_closes_the_trade_and_opens_the_rest_under_a_new_id_with_its_share_of_the_fee() -> None:
    r = fill(long_1_at_100(), "SELL", 4.0, 90.0, fee=1.0, seq=5, when=T1)
    assert r.changes == [
        Change(kind="close", position_id="p1", side="LONG", qty_before=1.0, qty_after=0.0, price=90.0,
               realized=-10.0, fee=0.25),
        Change(kind="open", position_id="p1:flip5", side="SHORT", qty_before=0.0, qty_after=3.0, price=90.0,
               fee=0.75)]
    assert r.position == opened("SHORT", 3.0, 90.0, fee=0.75, seq=5, when=T1,
                                info=EntryInfo(position_id="p1:flip5", tp=130.0, sl=80.0,
                                               ttl_ts=T0 + timedelta(hours=4), intent_id="i1", signal_id="s1",
                                               arrival_mid=99.5))
    assert r.realized == -10.0 and r.anomaly is None
    assert r.closed is not None and (r.closed.seq, r.closed.reason, r.closed.position.qty) == (5, "fill", 0.0)
    assert r.closed.position.fees == 0.5


def test_a_flip_with_its_own_intent_keeps_that_intents_id() -> None:
    r = fill(long_1_at_100(), "SELL", 2.0, 90.0, fee=0.5, seq=5, entry=EntryInfo(position_id="p2"))
    assert r.position is not None and r.position.position_id == "p2"
    assert r.changes[1].position_id == "p2"


def test_a_reduce_only_flip_closes_and_reports_the_excess() -> None:
    r = fill(long_1_at_100(), "SELL", 4.0, 90.0, fee=1.0, seq=5, reduce_only=True)
    assert r.position is None and r.closed is not None
    assert r.anomaly == "reduce-only fill exceeded the position by 3; excess not applied"
    assert [c.kind for c in r.changes] == ["close"] and r.changes[0].fee == 0.25


def test_a_reduce_only_fill_that_would_grow_is_refused_with_the_position_as_it_was() -> None:
    pos = fill(None, "SELL", 2.0, 100.0, fee=0.0, seq=1).position
    r = fill(pos, "SELL", 1.0, 101.0, fee=0.25, seq=2, reduce_only=True)
    assert r.anomaly == "reduce-only SELL fill would increase the SHORT position"
    assert r.changes == [] and r.position is not None
    assert (r.position.qty, r.position.entry_price, r.position.fees, r.position.entry_qty_total) == (
        2.0, 100.0, 0.0, 2.0)


# --- extremes, excursions, marks ---------------------------------------------------------------------


def test_observe_widens_only_past_the_extremes() -> None:
    p = opened("LONG", 1.0, 100.0, fee=0.0, seq=1)
    assert p.observe(100.0) is False
    assert p.observe(99.0) is True and (p.trade_min_price, p.trade_max_price) == (99.0, 100.0)
    assert p.observe(99.0) is False
    assert p.observe(101.0) is True and (p.trade_min_price, p.trade_max_price) == (99.0, 101.0)
    assert p.observe(101.0) is False and p.observe(100.5) is False


@pytest.mark.parametrize(("side", "low", "high", "expected"), [
    ("LONG", 80.0, 110.0, (40.0, 20.0, 0.2, 0.1)),
    ("SHORT", 80.0, 110.0, (20.0, 40.0, 0.1, 0.2)),
    ("LONG", 100.0, 125.0, (0.0, 50.0, 0.0, 0.25)),  # never below entry: no adverse excursion
    ("SHORT", 75.0, 100.0, (0.0, 50.0, 0.0, 0.25)),
])
def test_excursions_per_side_at_the_largest_size(side: str, low: float, high: float,
                                                  expected: tuple[float, float, float, float]) -> None:
    p = opened(side, 1.0, 100.0, fee=0.0, seq=1, peak_qty=2.0, trade_min_price=low, trade_max_price=high)
    assert p.excursions() == expected


def test_excursions_are_never_negative_when_the_average_lies_outside_the_extremes() -> None:
    # An adopted position can carry an average entry the trade's prices never touched.
    p = opened("LONG", 1.0, 90.0, fee=0.0, seq=1, entry_notional=90.0, trade_min_price=95.0, trade_max_price=99.0)
    assert p.excursions() == (0.0, 9.0, 0.0, 0.1)
    p = opened("LONG", 1.0, 110.0, fee=0.0, seq=1, entry_notional=110.0, trade_min_price=95.0,
               trade_max_price=99.0)
    assert p.excursions()[1] == 0.0 and p.excursions()[3] == 0.0


def test_average_entry_is_from_the_entry_totals_or_the_entry_price_without_them() -> None:
    assert opened("LONG", 1.0, 100.0, fee=0.0, seq=1, entry_qty_total=0.5, entry_notional=60.0).avg_entry() == 120.0
    assert opened("LONG", 1.0, 100.0, fee=0.0, seq=1, entry_qty_total=0.0, entry_notional=60.0).avg_entry() == 100.0


@pytest.mark.parametrize(("side", "mark", "expected"), [("LONG", 110.0, 20.0), ("SHORT", 110.0, -20.0),
                                                        ("LONG", None, 0.0)])
def test_unrealized_at_the_mark(side: str, mark: float | None, expected: float) -> None:
    assert opened(side, 2.0, 100.0, fee=0.0, seq=1, mark_price=mark).unrealized() == expected


@pytest.mark.parametrize(("exit_qty", "exit_notional", "mark", "expected"), [
    (0.5, 50.0, 120.0, 100.0),  # from the exits, even under one unit
    (0.0, 0.0, 120.0, 120.0),   # closed without a fill (reconciliation): at the mark
    (0.0, 0.0, None, 100.0),    # and without a mark: at the entry
])
def test_a_records_exit_price(exit_qty: float, exit_notional: float, mark: float | None, expected: float) -> None:
    p = opened("LONG", 1.0, 100.0, fee=0.0, seq=1, exit_qty_total=exit_qty, exit_notional=exit_notional,
               mark_price=mark)
    assert TradeClose(position=p, exit_time=T1, seq=2, reason="reconcile").record().exit_price == expected


def test_the_open_positions_view_carries_every_field() -> None:
    p = opened("SHORT", 2.0, 100.0, fee=0.5, seq=3, updated_seq=9, updated_at=T2, mark_price=95.0,
               trade_min_price=94.0, trade_max_price=103.0, realized_pnl=4.0, source="reconcile")
    assert p.to_view() == StoredPosition(
        **SCOPE, side="SHORT", qty=2.0, entry_price=100.0, entry_time=T0, position_id="p1", tp=130.0, sl=80.0,
        ttl_ts=T0 + timedelta(hours=4), trade_min_price=94.0, trade_max_price=103.0, mark_price=95.0,
        unrealized_pnl=10.0, realized_gross=4.0, fees=0.5, entry_intent_id="i1", entry_signal_id="s1",
        entry_arrival_mid=99.5, source="reconcile", opened_seq=3, updated_seq=9, created_at=T0, updated_at=T2)
    assert p.key == ("SIM", "paper", "BTCUSDT") and p.direction == -1
