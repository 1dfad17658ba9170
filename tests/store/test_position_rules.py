"""The position rules the store applies to every fill (pure functions, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.state_writer.store.positions import EntryInfo, FillResult, Position, apply_fill

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _fill(pos: Position | None, side: str, qty: float, price: float, *, fee: float = 0.0, reduce_only: bool = False,
          seq: int = 1, pid: str = "p1") -> FillResult:
    return apply_fill(pos, mode="SIM", account="paper", symbol="BTCUSDT", side=side, qty=qty, price=price, fee=fee,
                      reduce_only=reduce_only, when=T0, seq=seq, entry=EntryInfo(position_id=pid, tp=1.0, sl=2.0))


def test_long_open_add_reduce_close() -> None:
    r = _fill(None, "BUY", 1.0, 100.0, fee=0.1)
    assert [c.kind for c in r.changes] == ["open"] and r.position is not None
    assert (r.position.side, r.position.tp, r.position.sl) == ("LONG", 1.0, 2.0)
    r = _fill(r.position, "BUY", 1.0, 110.0, fee=0.1, seq=2)
    assert r.position is not None and r.position.entry_price == 105.0 and r.position.qty == 2.0
    r.position.observe(90.0)
    r = _fill(r.position, "SELL", 0.5, 120.0, fee=0.05, seq=3)
    assert r.position is not None and r.realized == pytest.approx(7.5) and r.position.qty == 1.5
    r = _fill(r.position, "SELL", 1.5, 100.0, fee=0.15, seq=4)
    assert r.position is None and r.closed is not None
    trade = r.closed.record()
    assert trade.realized_gross == pytest.approx(7.5 - 7.5)
    assert trade.fees == pytest.approx(0.4)
    assert trade.realized_net == pytest.approx(-0.4)
    assert (trade.entry_price, trade.exit_price, trade.qty) == (105.0, pytest.approx(105.0), 2.0)
    # MAE/MFE from the extremes (90..120) against the average entry 105, at the largest size (2).
    assert (trade.mae, trade.mfe) == (pytest.approx(30.0), pytest.approx(30.0))


def test_short_pnl_and_excursions_mirror_long() -> None:
    r = _fill(None, "SELL", 2.0, 50.0)
    assert r.position is not None and r.position.side == "SHORT"
    r.position.observe(47.0)
    r.position.observe(55.0)
    r = _fill(r.position, "BUY", 2.0, 48.0, seq=2)
    assert r.closed is not None
    trade = r.closed.record()
    assert trade.realized_gross == pytest.approx(4.0)
    assert trade.mae == pytest.approx(10.0) and trade.mfe == pytest.approx(6.0)


def test_flip_closes_the_trade_and_opens_the_rest_with_its_own_id() -> None:
    r = _fill(None, "BUY", 1.0, 100.0, fee=0.2, pid="p1")
    r = _fill(r.position, "SELL", 3.0, 110.0, fee=0.3, seq=5, pid="p1")
    assert r.closed is not None and r.closed.record().realized_gross == pytest.approx(10.0)
    assert r.position is not None and (r.position.side, r.position.qty) == ("SHORT", 2.0)
    assert r.position.position_id == "p1:flip5"
    assert [c.kind for c in r.changes] == ["close", "open"]
    assert sum(c.fee for c in r.changes) == pytest.approx(0.3)


def test_reduce_only_never_opens_or_grows() -> None:
    r = _fill(None, "SELL", 1.0, 100.0, reduce_only=True)
    assert r.position is None and r.anomaly and not r.changes
    r = _fill(None, "BUY", 1.0, 100.0)
    grown = _fill(r.position, "BUY", 1.0, 101.0, reduce_only=True)
    assert grown.anomaly and grown.position is not None and grown.position.qty == 1.0
    over = _fill(grown.position, "SELL", 1.5, 102.0, reduce_only=True)
    assert over.closed is not None and over.position is None and "excess" in (over.anomaly or "")


def test_float_dust_is_flat() -> None:
    r = _fill(None, "BUY", 0.1, 100.0)
    r = _fill(r.position, "BUY", 0.2, 100.0)
    r = _fill(r.position, "SELL", 0.3, 100.0)
    assert r.position is None and r.closed is not None


fills = st.lists(
    st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 50), st.integers(50, 150)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(fills, st.integers(50, 150))
def test_realized_plus_unrealized_equals_cash_flow(seq_of_fills: list[tuple[str, int, int]], final: int) -> None:
    """Whatever the order of fills: realized (closed and reduced) + open at mark = the trades' cash flow."""
    pos: Position | None = None
    realized = 0.0
    net = 0.0
    cash = 0.0
    for n, (side, qty, price) in enumerate(seq_of_fills, start=1):
        q, p = qty / 10.0, float(price)
        r = _fill(pos, side, q, p, seq=n, pid=f"p{n}")
        realized += r.realized
        pos = r.position
        sign = 1 if side == "BUY" else -1
        net += sign * q
        cash -= sign * q * p
    signed = 0.0 if pos is None else pos.qty * pos.direction
    assert signed == pytest.approx(net, abs=1e-9)
    unrealized = 0.0 if pos is None else (final - pos.entry_price) * pos.qty * pos.direction
    assert realized + unrealized == pytest.approx(cash + net * final, abs=1e-6)
    if pos is not None:
        assert pos.trade_min_price - 1e-9 <= pos.entry_price <= pos.trade_max_price + 1e-9
