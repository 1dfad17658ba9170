"""Position arithmetic: one net position per symbol, changed one fill at a time.

The paper exchange, the positions store and the bound check at ingest all use this module,
so "average entry", "realized" and "flat" mean the same number everywhere.

A position is a signed quantity (+ long, - short) and an average entry price. A fill in the
position's direction adds: the entry moves to the size-weighted average. Against it, it
reduces and realizes `(price - entry) * closed * sign`; past flat it closes the position and
opens the opposite one with the rest at the fill price (a flip). A remainder smaller than
`FLAT_EPS` of the size it came from is float noise, not a position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from domain.vocabulary import Direction, OrderSide, sign_of

FLAT_EPS: Final = 1e-9


def is_flat(remaining: float, reference: float) -> bool:
    """True when `remaining` (>= 0, or float noise below it) is nothing next to `reference`."""
    return remaining <= FLAT_EPS * max(reference, 1e-300)


def unrealized_pnl(direction: Direction, qty: float, entry_price: float, mark_price: float) -> float:
    """(mark - entry) * qty * sign, qty the absolute size."""
    return (mark_price - entry_price) * qty * sign_of(direction)


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill did to a net position."""

    qty: float  # signed position after the fill (0.0 when flat)
    entry_price: float  # average entry after the fill (0.0 when flat)
    closed: float  # size of the old position the fill closed (>= 0)
    realized: float  # gross PnL of the closed part, before fees
    opened: float  # size the fill added, or opened after a flip (>= 0)

    @property
    def flipped(self) -> bool:
        """The fill closed the old position and opened the opposite one."""
        return self.closed > 0.0 and self.opened > 0.0

    @property
    def direction(self) -> Direction | None:
        if self.qty == 0.0:
            return None
        return "LONG" if self.qty > 0 else "SHORT"


def apply_fill(signed_qty: float, entry_price: float, side: OrderSide, qty: float, price: float) -> FillEffect:
    """The position after a fill of `qty` (> 0) at `price` on `side`."""
    sign = 1.0 if side == "BUY" else -1.0
    held = abs(signed_qty)
    if held == 0.0:
        # Opens at exactly the fill price: a round trip at one price realizes exactly 0.
        return FillEffect(sign * qty, price, 0.0, 0.0, qty)
    if (signed_qty > 0) == (sign > 0):
        # Moves the average only by the difference: equal prices leave it exact, no float drift.
        entry = entry_price + (price - entry_price) * qty / (held + qty)
        return FillEffect(signed_qty + sign * qty, entry, 0.0, 0.0, qty)
    closing = min(qty, held)
    leftover = qty - closing
    if is_flat(leftover, qty):
        closing, leftover = qty, 0.0
    realized = (price - entry_price) * closing * (1.0 if signed_qty > 0 else -1.0)
    remaining = held - closing
    if not is_flat(remaining, held):
        return FillEffect(remaining if signed_qty > 0 else -remaining, entry_price, closing, realized, 0.0)
    if leftover > 0.0:
        return FillEffect(sign * leftover, price, closing, realized, leftover)
    return FillEffect(0.0, 0.0, closing, realized, 0.0)
