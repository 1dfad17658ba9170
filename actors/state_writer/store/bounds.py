"""Aggregate bounds, checked at ingest: no fill may take a stored position past what a view can hold.

Each fill is bounded on its own (qty and price at most 10^15), but the store adds fills up:
two valid fills of 6e14 made a position of 1.2e15 whose `open_positions` row no view model
accepts, and every snapshot with that view failed, also after a restart (the row was in the
database). So the sum is checked before the journal, against the committed positions plus
the fills this batch accepted so far, and a fill that would pass the bound is NACKed
`bound_exceeded`. Nothing here writes; the store applies the same arithmetic after commit.
"""

from __future__ import annotations

from collections.abc import Mapping

from actors.state_writer.store.positions import Position
from bus.codec import BusError
from bus.messages import Message, OrderFilled
from bus.messages.base import MAX_AMOUNT
from bus.protocol import ErrorCode
from domain.positions import apply_fill

Key = tuple[str, str, str]


def projected(signed: float, entered: float, side: str, qty: float, reduce_only: bool) -> tuple[float, float]:
    """(signed size, size entered by the trade) after one fill, as `positions.apply_fill` leaves them."""
    if signed == 0.0:
        return (0.0, 0.0) if reduce_only else ((qty if side == "BUY" else -qty), qty)
    effect = apply_fill(signed, 1.0, side, qty, 1.0)  # type: ignore[arg-type]
    if effect.closed == 0.0:  # an add (a reduce-only one is not applied)
        return (signed, entered) if reduce_only else (effect.qty, entered + qty)
    if effect.flipped:  # the rest opens a new trade, unless the fill was reduce-only
        return (0.0, 0.0) if reduce_only else (effect.qty, effect.opened)
    return (effect.qty, entered) if effect.qty != 0.0 else (0.0, 0.0)


class FillBounds:
    """One ingest batch's view of position sizes: committed positions plus this batch's fills."""

    def __init__(self, positions: Mapping[Key, Position]) -> None:
        self._positions = positions
        self._batch: dict[Key, tuple[float, float]] = {}

    def check(self, msg: Message) -> BusError | None:
        if not isinstance(msg, OrderFilled):
            return None
        key = (msg.mode, msg.account, msg.symbol)
        now = self._batch.get(key)
        if now is None:
            p = self._positions.get(key)
            now = (0.0, 0.0) if p is None else (p.qty * p.direction, p.entry_qty_total)
        signed, entered = projected(now[0], now[1], msg.side, msg.qty, msg.reduce_only)
        if abs(signed) > MAX_AMOUNT or entered > MAX_AMOUNT:
            return BusError(
                ErrorCode.BOUND_EXCEEDED,
                f"fill {msg.trade_id} would take the {msg.mode}/{msg.account} {msg.symbol} position to "
                f"{abs(signed):g} (entered {entered:g}); a position is at most {MAX_AMOUNT:g}",
                "qty",
            )
        self._batch[key] = (signed, entered)
        return None
