"""The end of a UTC day: each open position's last mark of the day, recorded for that day's P&L.

A past day's unrealized P&L is valued at that day's last marks (`pnl.py`), not at whatever
mark the database holds later: when the store's P&L day rolls over, every position open at
the day's end is recorded as a `day_end_mark` position event, stamped with the day's last
instant and carrying its mark, entry and unrealized PnL.

The position a day ends with is made of the fills **stamped** on or before its end, whenever
they are committed (a fill counts on the day of its own time, like its fee and realized P&L):

- an early fill (stamped after the store's current day, committed before the rollover) leaves
  that day's end-of-day position as it was: the position before it is kept, in memory and as a
  `day_end_basis` event in the fill's own transaction (so a restart finds it), and fills of the
  day committed after it move that basis;
- a late fill (stamped on the day that just ended, committed after the rollover) moves that
  day's end-of-day position: a new `day_end_mark` is written in the fill's transaction (the
  newest record of a position wins), valued at the day's last mark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from actors.state_writer.store.pnl import Key, day_end
from actors.state_writer.store.positions import Position
from actors.state_writer.store.queries import DAY_END_MARK
from actors.state_writer.store.unit import Unit
from bus.messages import OrderFilled
from domain import positions as position_math
from domain.positions import unrealized_pnl


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

    @property
    def key(self) -> Key:
        return (self.mode, self.account, self.symbol)

    def after(self, f: OrderFilled, seq: int) -> DayEndMark:
        """This end-of-day position moved by a fill stamped on its day (the kernel's arithmetic;
        a reduce-only fill never opens or grows it). Valued at the same mark: the day's last;
        a position the fill opens is marked at the fill's price."""
        held = self.qty if self.side == "LONG" else -self.qty
        effect = position_math.apply_fill(held, self.entry_price, f.side, f.qty, f.price)
        if f.reduce_only and (held == 0.0 or effect.closed == 0.0 or effect.flipped):
            qty, entry, side = (abs(held), self.entry_price, self.side) if not effect.flipped else (0.0, 0.0, "")
        else:
            qty, entry = abs(effect.qty), effect.entry_price
            side = ("LONG" if effect.qty > 0 else "SHORT") if effect.qty != 0.0 else ""
        mark = f.price if held == 0.0 or effect.flipped else self.mark_price
        upnl = unrealized_pnl(side, qty, entry, mark) if qty > 0 and mark is not None else 0.0  # type: ignore[arg-type]
        return DayEndMark(day=self.day, seq=seq, mode=self.mode, account=self.account, symbol=self.symbol,
                          position_id=self.position_id or f.position_id or f.intent_id, side=side, qty=qty,
                          entry_price=entry, mark_price=mark, unrealized=upnl)


def flat_mark(day: date, seq: int, key: Key) -> DayEndMark:
    """No position at the end of `day`."""
    mode, account, symbol = key
    return DayEndMark(day=day, seq=seq, mode=mode, account=account, symbol=symbol, position_id="", side="",
                      qty=0.0, entry_price=0.0, mark_price=None, unrealized=0.0)


def mark_of(day: date, seq: int, key: Key, p: Position | None) -> DayEndMark:
    """`p` (None: flat) as an end-of-day position of `day`, at its mark now."""
    if p is None:
        return flat_mark(day, seq, key)
    return DayEndMark(day=day, seq=seq, mode=p.mode, account=p.account, symbol=p.symbol, position_id=p.position_id,
                      side=p.side, qty=p.qty, entry_price=p.entry_price, mark_price=p.mark_price,
                      unrealized=p.unrealized())


def with_basis(marks: list[DayEndMark], basis: Mapping[Key, DayEndMark],
               positions: Mapping[Key, Position]) -> list[DayEndMark]:
    """The day's end-of-day marks where early fills changed a position: its basis (the position
    before them) at the symbol's last mark (the open position's, else the basis's own)."""
    out = {m.key: m for m in marks}
    for key, b in basis.items():
        out.pop(key, None)
        if b.qty <= 0:
            continue
        p = positions.get(key)
        mark = p.mark_price if p is not None and p.mark_price is not None else b.mark_price
        upnl = unrealized_pnl(b.side, b.qty, b.entry_price, mark) if mark is not None else 0.0  # type: ignore[arg-type]
        out[key] = DayEndMark(day=b.day, seq=b.seq, mode=b.mode, account=b.account, symbol=b.symbol,
                              position_id=b.position_id, side=b.side, qty=b.qty, entry_price=b.entry_price,
                              mark_price=mark, unrealized=upnl)
    return [out[k] for k in sorted(out)]


def day_end_marks(day: date, seq: int, positions: Mapping[Key, Position]) -> list[DayEndMark]:
    end = day_end(day)
    return [DayEndMark(day=day, seq=seq, mode=mode, account=account, symbol=symbol, position_id=p.position_id,
                       side=p.side, qty=p.qty, entry_price=p.entry_price, mark_price=p.mark_price,
                       unrealized=p.unrealized())
            for (mode, account, symbol), p in sorted(positions.items())
            if p.entry_time <= end]  # not one opened after the day ended (in the moment before the rollover)


def write_day_end_marks(unit: Unit, marks: Iterable[DayEndMark], kind: str = DAY_END_MARK) -> None:
    """As position events of `kind`: `day_end_mark` (the record `v7 pnl --day` reads) or
    `day_end_basis` (a position before early fills, read back only by the store on start)."""
    for m in marks:
        unit.event(kind, m.seq, day_end(m.day), mode=m.mode, account=m.account, symbol=m.symbol,
                   position_id=m.position_id, side=m.side, qty_before=m.qty, qty_after=m.qty, price=m.mark_price,
                   day=m.day.isoformat(), entry_price=m.entry_price, unrealized=m.unrealized)
