"""Read-only access to the positions database, for the CLI: past days, and today when the writer is not answering.

Opens the database read-only (SQLite `mode=ro`; PostgreSQL without creating anything) and
renders the P&L with the same arithmetic as the writer's views (`pnl.py`). Never writes,
never takes the lock.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from actors.state_writer.store import queries
from actors.state_writer.store.pnl import day_bounds
from actors.state_writer.store.schema import make_engine
from actors.state_writer.store.tables import OpenPositionRow, StoreMeta
from actors.state_writer.store.unit import position_from_row
from bus.messages import ClosedTrade, PnlToday, StoredPosition
from config.settings import Settings


class StoreReader:
    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings.database_url, schema=settings.store.db_schema, read_only=True)

    def open_positions(self) -> list[StoredPosition]:
        with Session(self.engine) as s:
            rows = s.scalars(select(OpenPositionRow).order_by(
                OpenPositionRow.mode, OpenPositionRow.account, OpenPositionRow.symbol))
            return [position_from_row(r).to_view() for r in rows]

    def pnl(self, day: date, *, today: date) -> PnlToday:
        """The P&L of `day`. Today: unrealized at the database's marks (written at most every
        `store.extremes_flush_s`), with a row for the active scope. A past day: unrealized at
        that day's last marks, recorded when it ended (none recorded: no unrealized)."""
        with Session(self.engine) as s:
            book = queries.day_book(s, day)
            if day < today:
                return book.render(queries.day_end_marks(s, day))
            positions = [position_from_row(r) for r in s.scalars(select(OpenPositionRow))]
            meta = s.get(StoreMeta, 1)
            active = [(meta.active_mode, meta.active_account)] if meta is not None else []
            return book.render({p.key: p.unrealized() for p in positions}, always=active)

    def trades(self, day: date) -> list[ClosedTrade]:
        with Session(self.engine) as s:
            start, end = day_bounds(day)
            return queries.closed_trades(s, start, end)

    def close(self) -> None:
        self.engine.dispose()
