"""Read-only access to the positions database, for the CLI when the state writer is not answering.

Opens the database read-only (SQLite `mode=ro`; PostgreSQL without creating anything) and
reads through the same queries the writer's views use. Never writes, never takes the lock.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from actors.state_writer.store import queries
from actors.state_writer.store.schema import make_engine
from actors.state_writer.store.tables import OpenPositionRow
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

    def pnl(self, day: date) -> PnlToday:
        with Session(self.engine) as s:
            positions = [position_from_row(r) for r in s.scalars(select(OpenPositionRow))]
            return queries.pnl_for_day(s, day, positions)

    def trades(self, day: date) -> list[ClosedTrade]:
        with Session(self.engine) as s:
            return queries.trades_for_day(s, day)

    def close(self) -> None:
        self.engine.dispose()
