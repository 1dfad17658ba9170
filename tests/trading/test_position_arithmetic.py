"""Position arithmetic against an independent reference (issue 14).

The reference below is written from the definitions in docs/positions_store.md and docs/trading.md,
not from domain/positions.py: a position is a signed size and a *cost basis* (the sum of
size x price of what is open); the average entry is cost / size. An add adds to both; a reduction
realizes (price - average) x closed x direction and keeps the average; going past flat closes the
position and opens the rest at the fill price; a flipping fill's fee is split by size. The same
random fill sequences (adds of unequal sizes, partial closes, flips, fees) go to the kernel
(domain.positions.apply_fill), to the store's arithmetic (actors/state_writer/store/positions.py)
and to the reference. The paper exchange's cash flows are checked for conservation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.state_writer.store.positions import EntryInfo, Position
from actors.state_writer.store.positions import apply_fill as store_apply_fill
from domain.positions import apply_fill as kernel_apply_fill
from exchange.adapter import OrderRequest

WHEN = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Ref:
    """The reference position: signed size, cost basis, realized gross, fees of the open trade."""

    size: float = 0.0
    cost: float = 0.0

    @property
    def entry(self) -> float:
        return self.cost / abs(self.size) if self.size else 0.0

    def fill(self, side: str, qty: float, price: float, fee: float) -> tuple[float, float, float]:
        """(realized gross, fee of the closing part, fee of the opening part) of one fill."""
        sign = 1.0 if side == "BUY" else -1.0
        if self.size == 0.0 or (self.size > 0) == (sign > 0):
            self.size += sign * qty
            self.cost += qty * price
            return 0.0, 0.0, fee
        held = abs(self.size)
        closed = min(qty, held)
        direction = 1.0 if self.size > 0 else -1.0
        realized = (price - self.entry) * closed * direction
        rest = qty - closed
        close_fee = fee * closed / qty  # split by size
        if closed < held:
            self.cost *= (held - closed) / held
            self.size -= direction * closed
            return realized, close_fee, 0.0
        self.size, self.cost = sign * rest, rest * price
        return realized, close_fee, fee - close_fee


# A fill: side, size (unequal sizes on purpose), price, fee rate in bps.
fills = st.lists(st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 40).map(lambda n: n / 8),
                           st.integers(50, 200).map(float), st.sampled_from([0.0, 2.0, 5.0])),
                 min_size=1, max_size=25)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(fills)
def test_kernel_equals_the_reference(seq: list[tuple[str, float, float, float]]) -> None:
    ref = Ref()
    qty, entry = 0.0, 0.0
    for side, size, price, _bps in seq:
        was = ref.size
        realized, _cf, _of = ref.fill(side, size, price, 0.0)
        effect = kernel_apply_fill(qty, entry, side, size, price)  # type: ignore[arg-type]
        qty, entry = effect.qty, effect.entry_price
        assert qty == pytest.approx(ref.size, abs=1e-9)
        assert entry == pytest.approx(ref.entry, rel=1e-9, abs=1e-9)
        assert effect.realized == pytest.approx(realized, rel=1e-9, abs=1e-9)
        crossed = was != 0.0 and (was > 0) != (side == "BUY")
        assert effect.closed == pytest.approx(min(size, abs(was)) if crossed else 0.0)
        assert effect.opened == pytest.approx(size - effect.closed)
        assert effect.flipped is (crossed and size > abs(was))


@SETTINGS
@given(fills)
def test_store_arithmetic_equals_the_reference(seq: list[tuple[str, float, float, float]]) -> None:
    ref = Ref()
    pos: Position | None = None
    realized_total = fees_closed = 0.0
    ref_realized = ref_fees_closed = ref_open_fees = 0.0
    for i, (side, size, price, bps) in enumerate(seq, start=1):
        fee = size * price * bps / 10_000
        realized, close_fee, open_fee = ref.fill(side, size, price, fee)
        ref_realized += realized
        res = store_apply_fill(pos, mode="SIM", account="a", symbol="BTCUSDT", side=side, qty=size, price=price,
                               fee=fee, reduce_only=False, when=WHEN, seq=i, entry=EntryInfo(position_id=f"p{i}"))
        assert res.anomaly is None
        assert res.realized == pytest.approx(realized, abs=1e-9)
        if res.closed is not None:  # the trade ended: its fees are its opening fees plus the closing share
            trade = res.closed.record()
            realized_total += trade.realized_gross
            fees_closed += trade.fees
            ref_fees_closed += ref_open_fees + close_fee
            assert trade.realized_net == pytest.approx(trade.realized_gross - trade.fees)
            ref_open_fees = 0.0
        elif close_fee:
            ref_open_fees += close_fee
        if ref.size == 0.0:
            assert res.position is None
        else:
            assert res.position is not None
            assert res.position.qty * res.position.direction == pytest.approx(ref.size, abs=1e-9)
            assert res.position.entry_price == pytest.approx(ref.entry, rel=1e-9)
            if res.closed is not None:  # a flip: the new trade carries only the opening part of the fee
                assert res.position.fees == pytest.approx(open_fee, abs=1e-12)
                ref_open_fees = open_fee
            elif close_fee == 0.0:
                ref_open_fees += open_fee
            assert res.position.fees == pytest.approx(ref_open_fees, abs=1e-9)
        pos = res.position
    open_realized = pos.realized_pnl if pos is not None else 0.0
    assert realized_total + open_realized == pytest.approx(ref_realized, abs=1e-7)
    assert fees_closed == pytest.approx(ref_fees_closed, abs=1e-9)


def test_flip_fee_split_is_by_size() -> None:
    """A 3 long sold 5: 3/5 of the fee closes the long, 2/5 opens the short (not all on one leg)."""
    info = EntryInfo(position_id="p1")
    opened = store_apply_fill(None, mode="SIM", account="a", symbol="XUSDT", side="BUY", qty=3.0, price=100.0, fee=0.3,
                              reduce_only=False, when=WHEN, seq=1, entry=info)
    flip = store_apply_fill(opened.position, mode="SIM", account="a", symbol="XUSDT", side="SELL", qty=5.0,
                            price=110.0, fee=1.0, reduce_only=False, when=WHEN, seq=2, entry=info)
    assert flip.closed is not None and flip.position is not None
    trade = flip.closed.record()
    assert (trade.realized_gross, trade.fees) == (pytest.approx(30.0), pytest.approx(0.3 + 0.6))
    assert [c.kind for c in flip.changes] == ["close", "open"]
    assert [c.fee for c in flip.changes] == [pytest.approx(0.6), pytest.approx(0.4)]
    assert (flip.position.side, flip.position.qty, flip.position.entry_price) == ("SHORT", 2.0, 110.0)
    assert flip.position.fees == pytest.approx(0.4) and flip.position.position_id == "p1:flip2"


def test_unequal_adds_weight_by_size() -> None:
    # 1 at 100 then 3 at 200: average 175 (a swapped weighting gives 125).
    first = kernel_apply_fill(0.0, 0.0, "BUY", 1.0, 100.0)
    second = kernel_apply_fill(first.qty, first.entry_price, "BUY", 3.0, 200.0)
    assert (second.qty, second.entry_price) == (4.0, pytest.approx(175.0))
    short = kernel_apply_fill(-3.0, 200.0, "SELL", 1.0, 100.0)
    assert (short.qty, short.entry_price) == (-4.0, pytest.approx(175.0))


@pytest.mark.parametrize("seed", range(4))
def test_paper_exchange_cash_flows_are_conserved(open_exchange, seed: int) -> None:
    """Wallet = start + Σ realized - Σ fees after every fill; once flat, Σ realized equals what the
    sells brought in minus what the buys cost (no money appears or vanishes)."""
    rng = random.Random(seed)
    ex, clock = open_exchange()
    start = ex.fetch_balance().wallet_balance
    realized = fees = cash = 0.0
    net = 0
    for i in range(12):
        lots = rng.randint(1, 6)
        side = rng.choice(["BUY", "SELL"])
        order = ex.place_order(OrderRequest(client_order_id=f"c{seed}-{i}", symbol="BTCUSDT", side=side,
                                            order_type="MARKET", qty=lots / 1000))
        net += lots if side == "BUY" else -lots
        for f in order.fills:
            realized += f.realized_pnl
            fees += f.fee
            cash += f.qty * f.price * (-1.0 if side == "BUY" else 1.0)
        assert ex.fetch_balance().wallet_balance == pytest.approx(start + realized - fees, abs=1e-6)
        clock.now += 1.0
        ex.tick()
    if net:
        side = "SELL" if net > 0 else "BUY"
        order = ex.place_order(OrderRequest(client_order_id=f"c{seed}-flat", symbol="BTCUSDT", side=side,
                                            order_type="MARKET", qty=abs(net) / 1000))
        for f in order.fills:
            realized += f.realized_pnl
            fees += f.fee
            cash += f.qty * f.price * (-1.0 if side == "BUY" else 1.0)
    assert ex.fetch_positions() == []
    assert realized == pytest.approx(cash, abs=1e-6)
    balance = ex.fetch_balance()
    assert balance.wallet_balance == pytest.approx(start + cash - fees, abs=1e-6)
    assert balance.fees_paid == pytest.approx(fees, abs=1e-9)
