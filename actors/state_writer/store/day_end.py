"""The end of a UTC day: each open position's last mark of the day, recorded for that day's P&L.

A past day's unrealized P&L is valued at that day's last marks (`pnl.py`), not at whatever
mark the database holds later: when the store's P&L day rolls over, every position open at
the day's end is recorded as a `day_end_mark` position event, stamped with the day's last
instant and carrying its mark, entry and unrealized PnL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from actors.state_writer.store.pnl import Key, day_end
from actors.state_writer.store.positions import Position
from actors.state_writer.store.queries import DAY_END_MARK
from actors.state_writer.store.unit import Unit


@dataclass(frozen=True, slots=True, kw_only=True)
class DayEndMark:
    day: date
    seq: int  # the last committed seq when the day ended
    mode: str
    account: str
    symbol: str
    position_id: str
    side: str
    qty: float
    entry_price: float
    mark_price: float | None
    unrealized: float


def day_end_marks(day: date, seq: int, positions: Mapping[Key, Position]) -> list[DayEndMark]:
    end = day_end(day)
    return [DayEndMark(day=day, seq=seq, mode=mode, account=account, symbol=symbol, position_id=p.position_id,
                       side=p.side, qty=p.qty, entry_price=p.entry_price, mark_price=p.mark_price,
                       unrealized=p.unrealized())
            for (mode, account, symbol), p in sorted(positions.items())
            if p.entry_time <= end]  # not one opened after the day ended (in the moment before the rollover)


def write_day_end_marks(unit: Unit, marks: Iterable[DayEndMark]) -> None:
    for m in marks:
        unit.event(DAY_END_MARK, m.seq, day_end(m.day), mode=m.mode, account=m.account, symbol=m.symbol,
                   position_id=m.position_id, side=m.side, qty_before=m.qty, qty_after=m.qty, price=m.mark_price,
                   day=m.day.isoformat(), entry_price=m.entry_price, unrealized=m.unrealized)
