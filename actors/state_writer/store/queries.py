"""Reads of the positions database: what the views load at `open()`, and the CLI's read-only fallback.

Never on the ingest path: the writer reads these once when the store opens (or reopens) and
keeps its views in memory from then on (`views.py`). The P&L arithmetic is `pnl.py`'s, fed
the same position events in the same (seq) order as the live views were, so a day's figures
read back from the database are the figures the writer served.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from actors.state_writer.store.pnl import PNL_EVENT_KINDS, DayBook, Key, MoneyEvent, day_bounds, utc_day
from actors.state_writer.store.tables import LegacyImportRow, PositionEventRow, TradeRecordRow
from actors.state_writer.store.unit import trade_from_row
from bus.messages import ClosedTrade, LegacyImportRecord

DAY_END_MARK = "day_end_mark"  # position_event kind: a position's last mark of a UTC day
# position_event kind: a position as of its day's end, before fills stamped after it (day_end.py)
DAY_END_BASIS = "day_end_basis"
TRADES_KEPT = 1000  # the `trades_today` view lists at most this many (the newest) of the day's trades


def money_events(session: Session, start: datetime, end: datetime | None = None) -> Iterator[MoneyEvent]:
    """The position events that moved money at or after `start` (and before `end`), in commit order."""
    q = (select(PositionEventRow.ts, PositionEventRow.mode, PositionEventRow.account, PositionEventRow.symbol,
                PositionEventRow.realized_pnl, PositionEventRow.fee)
         .where(PositionEventRow.kind.in_(PNL_EVENT_KINDS), PositionEventRow.ts >= start,
                PositionEventRow.mode.is_not(None), PositionEventRow.account.is_not(None),
                PositionEventRow.symbol.is_not(None))
         .order_by(PositionEventRow.seq, PositionEventRow.id))
    if end is not None:
        q = q.where(PositionEventRow.ts < end)
    for ts, mode, account, symbol, realized, fee in session.execute(q):
        yield MoneyEvent(ts=ts, mode=mode, account=account, symbol=symbol, realized=float(realized or 0.0),
                         fee=float(fee or 0.0))


def closed_trades(session: Session, start: datetime, end: datetime | None = None,
                  newest: int | None = None) -> list[ClosedTrade]:
    """Trades that closed at or after `start` (and before `end`), in close order; the `newest` last ones."""
    q = select(TradeRecordRow).where(TradeRecordRow.exit_time >= start)
    if end is not None:
        q = q.where(TradeRecordRow.exit_time < end)
    if newest is None:
        return [trade_from_row(r) for r in session.scalars(q.order_by(TradeRecordRow.closed_seq, TradeRecordRow.id))]
    rows = list(session.scalars(q.order_by(TradeRecordRow.closed_seq.desc(), TradeRecordRow.id.desc()).limit(newest)))
    return [trade_from_row(r) for r in reversed(rows)]


def trade_close_keys(session: Session, start: datetime, end: datetime | None = None) -> Iterator[tuple[date, Key]]:
    """(UTC day of the exit, key) of every trade closed at or after `start` (and before `end`)."""
    q = select(TradeRecordRow.exit_time, TradeRecordRow.mode, TradeRecordRow.account, TradeRecordRow.symbol).where(
        TradeRecordRow.exit_time >= start)
    if end is not None:
        q = q.where(TradeRecordRow.exit_time < end)
    for exit_time, mode, account, symbol in session.execute(q.order_by(TradeRecordRow.closed_seq)):
        yield utc_day(exit_time), (mode, account, symbol)


def day_book(session: Session, day: date) -> DayBook:
    """A past (or the current) day's money, read back."""
    start, end = day_bounds(day)
    book = DayBook(day)
    for event in money_events(session, start, end):
        book.add(event)
    for _day, key in trade_close_keys(session, start, end):
        book.add_close(key)
    return book


def day_end_marks(session: Session, day: date) -> dict[Key, float]:
    """Unrealized PnL of each position open at the end of `day`, at that day's last mark (the
    newest record per position wins: a day recorded twice, e.g. after the clock stepped back)."""
    start, end = day_bounds(day)
    q = (select(PositionEventRow.mode, PositionEventRow.account, PositionEventRow.symbol, PositionEventRow.detail)
         .where(PositionEventRow.kind == DAY_END_MARK, PositionEventRow.ts >= start, PositionEventRow.ts < end)
         .order_by(PositionEventRow.id))
    out: dict[Key, float] = {}
    for mode, account, symbol, detail in session.execute(q):
        out[(mode, account, symbol)] = float(json.loads(detail or "{}").get("unrealized", 0.0))
    return out


def day_end_records(session: Session, kind: str, day: date) -> list[tuple[PositionEventRow, dict[str, Any]]]:
    """The `kind` records stamped at the end of `day`, oldest first (a later one replaces an
    earlier one of the same position)."""
    start, end = day_bounds(day)
    q = (select(PositionEventRow).where(PositionEventRow.kind == kind, PositionEventRow.ts >= start,
                                        PositionEventRow.ts < end).order_by(PositionEventRow.id))
    return [(row, json.loads(row.detail or "{}")) for row in session.scalars(q)]


def last_day_ended(session: Session) -> date | None:
    """The newest UTC day whose end-of-day marks are recorded (None: never)."""
    last = session.execute(select(func.max(PositionEventRow.ts)).where(
        PositionEventRow.kind == DAY_END_MARK)).scalar_one_or_none()
    return None if last is None else utc_day(last)


def legacy_imports(session: Session) -> list[LegacyImportRecord]:
    q = select(LegacyImportRow).order_by(LegacyImportRow.seq)
    return [LegacyImportRecord.model_validate({name: getattr(r, name) for name in LegacyImportRecord.model_fields})
            for r in session.scalars(q)]
