"""Linear (USDⓈ-M) contract math, shared by the paper exchange, the executor and the tests.

A position is a signed quantity in base units (+ long, - short) and an average entry price.
PnL is in quote currency: unrealized = (mark - entry) * qty * direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PositionSide = Literal["LONG", "SHORT"]
OrderSide = Literal["BUY", "SELL"]

# Quantities below this are treated as flat (float dust after partial closes).
QTY_EPSILON = 1e-12


def direction(side: PositionSide) -> int:
    return 1 if side == "LONG" else -1


def unrealized_pnl(side: PositionSide, qty: float, entry_price: float, mark_price: float) -> float:
    """(mark - entry) * qty * direction, qty the absolute size."""
    return (mark_price - entry_price) * qty * direction(side)


def closing_side(side: PositionSide) -> OrderSide:
    """The order side that reduces a position of `side`."""
    return "SELL" if side == "LONG" else "BUY"


@dataclass(frozen=True, slots=True)
class FillResult:
    qty: float  # new signed position quantity
    entry_price: float  # new average entry (0.0 when flat)
    realized_pnl: float  # PnL realized by the closing part of the fill (before fees)
    closed_qty: float  # how much of the old position the fill closed


def apply_fill(qty: float, entry_price: float, side: OrderSide, fill_qty: float, fill_price: float) -> FillResult:
    """The position after a fill: adds average the entry; the closing part realizes PnL;
    a fill larger than the position flips it, the rest opening at the fill price."""
    signed = fill_qty if side == "BUY" else -fill_qty
    if abs(qty) <= QTY_EPSILON:
        return FillResult(signed, fill_price, 0.0, 0.0)  # exactly the fill price: no float drift
    if (qty > 0) == (signed > 0):
        new_qty = qty + signed
        # Moves the average only by the difference: equal prices leave it exact.
        new_entry = entry_price + (fill_price - entry_price) * fill_qty / abs(new_qty)
        return FillResult(new_qty, new_entry, 0.0, 0.0)
    closed = min(abs(qty), fill_qty)
    pos_dir = 1 if qty > 0 else -1
    realized = (fill_price - entry_price) * closed * pos_dir
    new_qty = qty + signed
    if abs(new_qty) <= QTY_EPSILON:
        return FillResult(0.0, 0.0, realized, closed)
    if (new_qty > 0) == (qty > 0):
        return FillResult(new_qty, entry_price, realized, closed)
    return FillResult(new_qty, fill_price, realized, closed)
