"""The one source of positions rows (the seeds' `_collect_positions_rows`).

Every row of positions_state.json comes from `position_row`: real entry and mark prices from
the exchange surface and unrealized = (mark - entry) * qty * direction. A live row without
prices is refused (`PositionDataError`): that symbol keeps its last good row and is marked
stale with the reason (`stale_symbols`), and takes no new entry, while the other symbols
publish and trade on. Never a row of zeros.
"""

from __future__ import annotations

from collections.abc import Iterable

from bus.messages import PositionRow
from domain.positions import unrealized_pnl
from exchange.adapter import ExchangePosition


class PositionDataError(Exception):
    """The exchange gave a live position without usable prices."""


def position_row(p: ExchangePosition) -> PositionRow:
    """One row; `PositionDataError` for a live position without usable prices."""
    qty, entry, mark = float(p.qty), float(p.entry_price), float(p.mark_price)
    if qty > 0 and (entry <= 0 or mark <= 0):
        raise PositionDataError(f"{p.symbol}: live qty {qty} with entry {entry} / mark {mark}")
    return PositionRow(
        symbol=p.symbol, side=p.side, qty=qty, entry_price=entry, mark_price=mark, notional=abs(qty * mark),
        realized_pnl=float(p.realized_pnl), unrealized_pnl=unrealized_pnl(p.side, qty, entry, mark),
        leverage=p.leverage, margin=p.margin,
    )


def collect_positions_rows(exchange_positions: Iterable[ExchangePosition]) -> list[PositionRow]:
    """Every row, or `PositionDataError` for the first bad one (all or nothing)."""
    return [position_row(p) for p in exchange_positions]


def collect_rows_by_symbol(exchange_positions: Iterable[ExchangePosition], last_good: dict[str, PositionRow]
                           ) -> tuple[list[PositionRow], dict[str, str]]:
    """Rows per symbol: a bad row is replaced by that symbol's last good row and reported stale
    (symbol -> reason), so one bad symbol never holds back the others. `last_good` is updated."""
    rows, stale = [], {}
    for p in exchange_positions:
        try:
            row = position_row(p)
        except PositionDataError as exc:
            stale[p.symbol] = str(exc)[:500]
            previous = last_good.get(p.symbol)
            if previous is not None:
                rows.append(previous)  # never a row of zeros, never "flat" for want of data
            continue
        last_good[p.symbol] = row
        rows.append(row)
    return rows, stale
