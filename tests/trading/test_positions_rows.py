"""Positions rows come from one function: PnL math and non-zero semantics, LONG and SHORT."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.executor.positions import PositionDataError, collect_positions_rows
from bus.messages import PositionsState
from domain.positions import apply_fill
from exchange.adapter import ExchangePosition
from tests import SIM_SCOPE

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def pos(side: str, qty: float, entry: float, mark: float, realized: float = 0.0) -> ExchangePosition:
    return ExchangePosition(symbol="BTCUSDT", side=side, qty=qty, entry_price=entry, mark_price=mark,
                            unrealized_pnl=0.0, realized_pnl=realized, leverage=5.0, margin=qty * mark / 5,
                            updated_at=NOW)


def test_long_row_pnl() -> None:
    [row] = collect_positions_rows([pos("LONG", 0.01, 42_000.0, 43_000.0, realized=1.5)])
    assert row.side == "LONG"
    assert row.unrealized_pnl == pytest.approx(10.0)
    assert row.notional == pytest.approx(430.0)
    assert row.realized_pnl == 1.5
    assert (row.entry_price, row.mark_price) == (42_000.0, 43_000.0)
    assert row.leverage == 5.0 and row.margin == pytest.approx(86.0)


def test_short_row_pnl() -> None:
    [row] = collect_positions_rows([pos("SHORT", 2.0, 3_000.0, 2_950.0)])
    assert row.side == "SHORT"
    assert row.unrealized_pnl == pytest.approx(100.0)  # short gains when the mark falls
    [loss] = collect_positions_rows([pos("SHORT", 2.0, 3_000.0, 3_100.0)])
    assert loss.unrealized_pnl == pytest.approx(-200.0)


def test_rows_ignore_the_exchanges_unrealized_figure() -> None:
    # The exchange said 0.0 unrealized; the row is computed from prices, never copied.
    [row] = collect_positions_rows([pos("LONG", 1.0, 100.0, 90.0)])
    assert row.unrealized_pnl == pytest.approx(-10.0)


@pytest.mark.parametrize("field", ["entry_price", "mark_price"])
def test_live_row_without_prices_is_refused(field: str) -> None:
    broken = pos("LONG", 0.5, 100.0, 101.0).model_copy(update={field: 0.0})  # as a bad exchange payload would be
    with pytest.raises(PositionDataError, match="BTCUSDT"):
        collect_positions_rows([broken])


def test_rows_validate_as_a_positions_snapshot() -> None:
    rows = collect_positions_rows([pos("LONG", 0.01, 42_000.0, 43_000.0), pos("SHORT", 1.0, 10.0, 9.0)])
    doc = PositionsState(scope=SIM_SCOPE, positions=rows).to_document()
    for row in doc["positions"]:
        if abs(row["qty"]) > 0:
            assert row["entry_price"] > 0 and row["mark_price"] > 0 and "unrealized_pnl" in row


def test_apply_fill_averages_closes_and_flips() -> None:
    opened = apply_fill(0.0, 0.0, "BUY", 1.0, 100.0)
    added = apply_fill(opened.qty, opened.entry_price, "BUY", 1.0, 110.0)
    assert (added.qty, added.entry_price, added.realized) == (2.0, 105.0, 0.0)
    reduced = apply_fill(added.qty, added.entry_price, "SELL", 0.5, 115.0)
    assert reduced.qty == 1.5 and reduced.entry_price == 105.0 and reduced.realized == pytest.approx(5.0)
    flipped = apply_fill(reduced.qty, reduced.entry_price, "SELL", 2.5, 100.0)
    assert flipped.qty == pytest.approx(-1.0) and flipped.entry_price == 100.0
    assert flipped.realized == pytest.approx(-7.5)
    short_closed = apply_fill(-2.0, 50.0, "BUY", 2.0, 40.0)
    assert short_closed.qty == 0.0 and short_closed.realized == pytest.approx(20.0)


@given(
    side=st.sampled_from(["BUY", "SELL"]),
    qty=st.floats(0.001, 100), entry=st.floats(1, 1e5), exit_=st.floats(1, 1e5),
)
def test_round_trip_realizes_exactly_the_unrealized(side: str, qty: float, entry: float, exit_: float) -> None:
    opened = apply_fill(0.0, 0.0, side, qty, entry)
    position_side = "LONG" if side == "BUY" else "SHORT"
    [row] = collect_positions_rows([pos(position_side, qty, entry, exit_)])
    closed = apply_fill(opened.qty, opened.entry_price, "SELL" if side == "BUY" else "BUY", qty, exit_)
    assert closed.qty == 0.0
    assert closed.realized == pytest.approx(row.unrealized_pnl, rel=1e-9, abs=1e-9)
