"""The ingest-time bound check projects a fill exactly as the store later applies it."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.state_writer.store.bounds import projected
from actors.state_writer.store.positions import EntryInfo, Position, apply_fill

T0 = datetime(2025, 1, 1, tzinfo=UTC)
fills = st.lists(st.tuples(st.sampled_from(["BUY", "SELL"]), st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 1e-10]),
                           st.booleans()), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(fills)
def test_projection_matches_apply_fill(sequence: list[tuple[str, float, bool]]) -> None:
    pos: Position | None = None
    signed = entered = 0.0
    for seq, (side, qty, reduce_only) in enumerate(sequence, 1):
        signed, entered = projected(signed, entered, side, qty, reduce_only)
        pos = apply_fill(pos, mode="SIM", account="a", symbol="BTCUSDT", side=side, qty=qty, price=100.0, fee=0.0,
                         reduce_only=reduce_only, when=T0, seq=seq, entry=EntryInfo(position_id=f"p{seq}")).position
        actual = 0.0 if pos is None else pos.qty * pos.direction
        assert signed == actual, (sequence[:seq], signed, actual)
        assert entered == (0.0 if pos is None else pos.entry_qty_total)
