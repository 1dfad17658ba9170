"""Read-side queries shared by the writer's views and the CLI's read-only fallback.

Today's P&L per (mode, account), for a UTC day:
  realized   = sum over that day's position events of (realized_pnl - fee): every reduction,
               close and fee of the day, including partial reductions of still-open positions
  unrealized = sum over open positions of (mark - entry) * qty * direction, at the last mark
  total      = realized + unrealized
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from actors.state_writer.store.positions import Position
from actors.state_writer.store.tables import LegacyImportRow, PositionEventRow, TradeRecordRow
from bus.messages import ClosedTrade, LegacyImportRecord, PnlScope, PnlToday


def utc_day(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def pnl_for_day(session: Session, day: date, open_positions: Iterable[Position]) -> PnlToday:
    start, end = day_bounds(day)
    rows: dict[tuple[str, str], dict[str, float]] = {}

    def scope(mode: str, account: str) -> dict[str, float]:
        return rows.setdefault((mode, account), {"realized": 0.0, "fees": 0.0, "unrealized": 0.0,
                                                 "closed": 0, "open": 0})

    realized_q = (
        select(PositionEventRow.mode, PositionEventRow.account,
               func.coalesce(func.sum(PositionEventRow.realized_pnl), 0.0),
               func.coalesce(func.sum(PositionEventRow.fee), 0.0))
        .where(PositionEventRow.ts >= start, PositionEventRow.ts < end, PositionEventRow.mode.is_not(None))
        .group_by(PositionEventRow.mode, PositionEventRow.account)
    )
    for mode, account, realized, fees in session.execute(realized_q):
        s = scope(mode, account)
        s["realized"] += float(realized)
        s["fees"] += float(fees)
    closed_q = (
        select(TradeRecordRow.mode, TradeRecordRow.account, func.count())
        .where(TradeRecordRow.exit_time >= start, TradeRecordRow.exit_time < end)
        .group_by(TradeRecordRow.mode, TradeRecordRow.account)
    )
    for mode, account, count in session.execute(closed_q):
        scope(mode, account)["closed"] = int(count)
    for p in open_positions:
        s = scope(p.mode, p.account)
        s["unrealized"] += p.unrealized()
        s["open"] += 1
    scopes = []
    for (mode, account), s in sorted(rows.items()):
        realized = s["realized"] - s["fees"]
        scopes.append(PnlScope(
            mode=mode, account=account, realized=realized, unrealized=s["unrealized"],  # type: ignore[arg-type]
            total=realized + s["unrealized"], fees=s["fees"], closed_trades=int(s["closed"]),
            open_positions=int(s["open"])))
    return PnlToday(day=day.isoformat(), scopes=scopes)


def trades_for_day(session: Session, day: date, limit: int = 1000) -> list[ClosedTrade]:
    start, end = day_bounds(day)
    q = (select(TradeRecordRow).where(TradeRecordRow.exit_time >= start, TradeRecordRow.exit_time < end)
         .order_by(TradeRecordRow.closed_seq).limit(limit))
    return [
        ClosedTrade.model_validate(
            {name: getattr(row, name) for name in ClosedTrade.model_fields}) for row in session.scalars(q)
    ]


def legacy_imports(session: Session) -> list[LegacyImportRecord]:
    q = select(LegacyImportRow).order_by(LegacyImportRow.seq)
    return [
        LegacyImportRecord(digest=r.digest, source_path=r.source_path, mode=r.mode, account=r.account,  # type: ignore[arg-type]
                           imported=r.imported, skipped=r.skipped, seq=r.seq, imported_at=r.imported_at)
        for r in session.scalars(q)
    ]
