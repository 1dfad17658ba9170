"""The one source of positions rows (the seeds' `_collect_positions_rows`).

Every row of positions_state.json comes from `collect_positions_rows`: real entry and mark
prices from the exchange surface and unrealized = (mark - entry) * qty * direction. A live
row without prices is refused (`PositionDataError`): the executor then publishes nothing this
loop, so the last good file stays, instead of a row of zeros.
"""

from __future__ import annotations

from collections.abc import Iterable

from bus.messages import PositionRow
from domain.positions import unrealized_pnl
from exchange.adapter import ExchangePosition


class PositionDataError(Exception):
    """The exchange returned a live position without usable prices. Skip this loop's publish."""


def collect_positions_rows(exchange_positions: Iterable[ExchangePosition]) -> list[PositionRow]:
    rows = []
    for p in exchange_positions:
        qty = float(p.qty)
        entry = float(p.entry_price)
        mark = float(p.mark_price)
        if qty > 0 and (entry <= 0 or mark <= 0):
            raise PositionDataError(f"{p.symbol}: live qty {qty} with entry {entry} / mark {mark}")
        rows.append(PositionRow(
            symbol=p.symbol,
            side=p.side,
            qty=qty,
            entry_price=entry,
            mark_price=mark,
            notional=abs(qty * mark),
            realized_pnl=float(p.realized_pnl),
            unrealized_pnl=unrealized_pnl(p.side, qty, entry, mark),
            leverage=p.leverage,
            margin=p.margin,
        ))
    return rows
