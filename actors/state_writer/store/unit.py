"""One batch's database work: the rows a committed batch changes, in one transaction.

The session begins its transaction on first use, so a batch that changes nothing in the
store (heartbeats, unchanged marks) never touches the database.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from actors.state_writer.store.metrics import StoreMetrics
from actors.state_writer.store.positions import Position, TradeClose
from actors.state_writer.store.tables import (
    OpenPositionRow,
    PositionEventRow,
    ReconciliationIssueRow,
    StoreMeta,
    TradeRecordRow,
)

_POSITION_COLUMNS = tuple(c.name for c in OpenPositionRow.__table__.columns)


def position_values(p: Position) -> dict[str, Any]:
    return {name: getattr(p, name) for name in _POSITION_COLUMNS}


def position_from_row(row: OpenPositionRow) -> Position:
    return Position(**{name: getattr(row, name) for name in _POSITION_COLUMNS})


@dataclass(slots=True)
class Issue:
    """An open reconciliation issue, mirrored from its row."""

    row_id: int
    mode: str
    account: str
    symbol: str
    kind: str
    policy: str
    store_side: str | None
    store_qty: float
    exchange_side: str | None
    exchange_qty: float
    exchange_entry_price: float | None
    exchange_mark_price: float | None
    detail: str
    opened_seq: int
    last_seen_seq: int
    opened_at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.mode, self.account, self.symbol)

    def same_as(self, other: Issue) -> bool:
        return (self.kind, self.store_side, self.store_qty, self.exchange_side, self.exchange_qty) == (
            other.kind, other.store_side, other.store_qty, other.exchange_side, other.exchange_qty)

    @classmethod
    def from_row(cls, row: ReconciliationIssueRow) -> Issue:
        return cls(row.id, row.mode, row.account, row.symbol, row.kind, row.policy, row.store_side, row.store_qty,
                   row.exchange_side, row.exchange_qty, row.exchange_entry_price, row.exchange_mark_price,
                   row.detail, row.opened_seq, row.last_seen_seq, row.opened_at)


class Unit:
    def __init__(self, session: Session, metrics: StoreMetrics, persisted: set[tuple[str, str, str]]) -> None:
        self.session = session
        self.metrics = metrics
        self.persisted = persisted  # keys of open_position rows that exist in the database
        self.touched = False

    def _exec(self, stmt: Any) -> Any:
        self.touched = True
        return self.session.execute(stmt)

    def event(
        self, kind: str, seq: int, ts: datetime, /, *, mode: str | None = None, account: str | None = None,
        symbol: str | None = None, position_id: str | None = None, trade_id: str | None = None,
        side: str | None = None, qty_before: float | None = None, qty_after: float | None = None,
        price: float | None = None, realized: float = 0.0, fee: float = 0.0, **detail: Any,
    ) -> None:
        self._exec(insert(PositionEventRow).values(
            seq=seq, ts=ts, kind=kind, mode=mode, account=account, symbol=symbol, position_id=position_id,
            trade_id=trade_id, side=side, qty_before=qty_before, qty_after=qty_after, price=price,
            realized_pnl=realized, fee=fee, detail=json.dumps(detail, default=str, sort_keys=True)))
        self.metrics.events.labels(kind).inc()

    def write_position(self, p: Position) -> None:
        values = position_values(p)
        if p.key in self.persisted:
            mode, account, symbol = p.key
            self._exec(update(OpenPositionRow).where(
                OpenPositionRow.mode == mode, OpenPositionRow.account == account, OpenPositionRow.symbol == symbol,
            ).values(**values))
        else:
            self._exec(insert(OpenPositionRow).values(**values))
            self.persisted.add(p.key)
        p.dirty_since_seq = None
        p.last_write_mono = time.monotonic()

    def delete_position(self, key: tuple[str, str, str]) -> None:
        if key not in self.persisted:
            return
        mode, account, symbol = key
        self._exec(delete(OpenPositionRow).where(
            OpenPositionRow.mode == mode, OpenPositionRow.account == account, OpenPositionRow.symbol == symbol))
        self.persisted.discard(key)

    def record_trade(self, close: TradeClose) -> None:
        p = close.position
        trade = close.record()
        _mae, _mfe, mae_pct, mfe_pct = p.excursions()
        # getattr, not model_dump: the bus time type serializes to a string even in python mode.
        values = {name: getattr(trade, name) for name in type(trade).model_fields if name != "closed_seq"}
        self._exec(insert(TradeRecordRow).values(
            **values, mae_pct=mae_pct, mfe_pct=mfe_pct, tp=p.tp, sl=p.sl,
            opened_seq=p.opened_seq, closed_seq=close.seq))
        self.metrics.trades_closed.labels(p.mode, p.account).inc()

    def insert_issue(self, issue: Issue) -> int:
        result = self._exec(insert(ReconciliationIssueRow).values(
            mode=issue.mode, account=issue.account, symbol=issue.symbol, kind=issue.kind, policy=issue.policy,
            status="open", store_side=issue.store_side, store_qty=issue.store_qty,
            exchange_side=issue.exchange_side, exchange_qty=issue.exchange_qty,
            exchange_entry_price=issue.exchange_entry_price, exchange_mark_price=issue.exchange_mark_price,
            detail=issue.detail, opened_seq=issue.opened_seq, last_seen_seq=issue.last_seen_seq,
            opened_at=issue.opened_at))
        return int(result.inserted_primary_key[0])

    def update_issue(self, issue: Issue) -> None:
        self._exec(update(ReconciliationIssueRow).where(ReconciliationIssueRow.id == issue.row_id).values(
            kind=issue.kind, store_side=issue.store_side, store_qty=issue.store_qty,
            exchange_side=issue.exchange_side, exchange_qty=issue.exchange_qty,
            exchange_entry_price=issue.exchange_entry_price, exchange_mark_price=issue.exchange_mark_price,
            detail=issue.detail, last_seen_seq=issue.last_seen_seq))

    def resolve_issue(self, issue: Issue, seq: int, resolution: str, by: str) -> None:
        self._exec(update(ReconciliationIssueRow).where(ReconciliationIssueRow.id == issue.row_id).values(
            status="resolved", resolved_seq=seq, resolution=resolution, resolved_by=by))

    def write_meta(self, **values: Any) -> None:
        self._exec(update(StoreMeta).where(StoreMeta.id == 1).values(**values))
