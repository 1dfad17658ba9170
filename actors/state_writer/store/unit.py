"""One batch's database work: the rows a committed batch changes, in one transaction.

The connection is taken (and the transaction begun) on first use, so a batch that changes
nothing in the store (heartbeats, marks inside the trade's range) never touches the
database. Statements are built once with bound parameters: building and compiling a fresh
statement per row costs more than the database does.

What the views need from those rows (the day's money, closed trades, imported files) is
collected on the unit as it is written, and handed to the views once the transaction has
committed: the views never read the database back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update

from actors.state_writer.store.metrics import StoreMetrics
from actors.state_writer.store.pnl import PNL_EVENT_KINDS, MoneyEvent
from actors.state_writer.store.positions import Position, TradeClose
from actors.state_writer.store.tables import (
    FillRow,
    IntentRow,
    LegacyImportRow,
    OpenPositionRow,
    PositionEventRow,
    ReconciliationIssueRow,
    StoreMeta,
    TradeRecordRow,
)
from bus.messages import ClosedTrade, LegacyImportRecord

_POS = OpenPositionRow.__table__
_POSITION_COLUMNS = tuple(c.name for c in _POS.columns)
_KEY = ("mode", "account", "symbol")
_ISSUE_FIELDS = ("kind", "policy", "store_side", "store_qty", "exchange_side", "exchange_qty", "exchange_entry_price",
                 "exchange_mark_price", "detail", "last_seen_seq")


def _by_key(table: Any) -> Any:
    return (table.c.mode == bindparam("k_mode")) & (table.c.account == bindparam("k_account")) & (
        table.c.symbol == bindparam("k_symbol"))


INSERT_POSITION = insert(_POS)
UPDATE_POSITION = update(_POS).where(_by_key(_POS)).values(
    {c: bindparam(f"v_{c}") for c in _POSITION_COLUMNS if c not in _KEY})
DELETE_POSITION = delete(_POS).where(_by_key(_POS))
INSERT_EVENT = insert(PositionEventRow.__table__)
INSERT_TRADE = insert(TradeRecordRow.__table__)
INSERT_FILL = insert(FillRow.__table__)
INSERT_INTENT = insert(IntentRow.__table__)
INSERT_IMPORT = insert(LegacyImportRow.__table__)
_ISSUES = ReconciliationIssueRow.__table__
INSERT_ISSUE = insert(_ISSUES)
UPDATE_ISSUE = update(_ISSUES).where(_ISSUES.c.id == bindparam("k_id")).values(
    {f: bindparam(f"v_{f}") for f in _ISSUE_FIELDS})
RESOLVE_ISSUE = update(_ISSUES).where(_ISSUES.c.id == bindparam("k_id")).values(
    status="resolved", resolved_seq=bindparam("v_seq"), resolution=bindparam("v_resolution"),
    resolved_by=bindparam("v_by"))
_FILLS = FillRow.__table__
FILL_SEEN = select(_FILLS.c.id).where(_by_key(_FILLS) & (_FILLS.c.trade_id == bindparam("k_trade_id")))
_INTENTS = IntentRow.__table__
INTENT_BY_ID = select(_INTENTS).where(_INTENTS.c.intent_id == bindparam("k_id"))
_IMPORTS = LegacyImportRow.__table__
IMPORT_SEEN = select(_IMPORTS.c.digest).where(_IMPORTS.c.digest == bindparam("k_digest"))
_META = StoreMeta.__table__
_META_UPDATES: dict[frozenset[str], Any] = {}  # one statement per set of columns written


def position_values(p: Position) -> dict[str, Any]:
    return {name: getattr(p, name) for name in _POSITION_COLUMNS}


def position_from_row(row: Any) -> Position:
    return Position(**{name: getattr(row, name) for name in _POSITION_COLUMNS})


@dataclass(slots=True, kw_only=True)
class Issue:
    """An open reconciliation issue, mirrored from its row (`row_id` 0 until inserted)."""

    mode: str
    account: str
    symbol: str
    kind: str
    policy: str
    detail: str
    opened_seq: int
    last_seen_seq: int
    opened_at: datetime
    store_side: str | None = None
    store_qty: float = 0.0
    exchange_side: str | None = None
    exchange_qty: float = 0.0
    exchange_entry_price: float | None = None
    exchange_mark_price: float | None = None
    row_id: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.mode, self.account, self.symbol)

    def same_as(self, other: Issue) -> bool:
        return (self.kind, self.store_side, self.store_qty, self.exchange_side, self.exchange_qty) == (
            other.kind, other.store_side, other.store_qty, other.exchange_side, other.exchange_qty)

    @classmethod
    def from_row(cls, row: ReconciliationIssueRow) -> Issue:
        return cls(row_id=row.id, **{name: getattr(row, name) for name in _ISSUE_COLUMNS})


_ISSUE_COLUMNS = ("mode", "account", "symbol", "kind", "policy", "detail", "opened_seq", "last_seen_seq",
                  "opened_at", "store_side", "store_qty", "exchange_side", "exchange_qty", "exchange_entry_price",
                  "exchange_mark_price")
# ClosedTrade field -> trade_record column, where the view names it apart from the table.
_TRADE_COLUMNS = {"realized_gross": "gross_pnl", "realized_net": "realized_pnl"}


def trade_from_row(row: TradeRecordRow) -> ClosedTrade:
    return ClosedTrade.model_validate({name: getattr(row, _TRADE_COLUMNS.get(name, name))
                                       for name in ClosedTrade.model_fields})


class Unit:
    def __init__(self, engine: Engine, metrics: StoreMetrics, persisted: set[tuple[str, str, str]]) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self.metrics = metrics
        self.persisted = persisted  # keys of open_position rows that exist in the database
        self.touched = False
        # For the views, once committed:
        self.money: list[MoneyEvent] = []
        self.trades: list[ClosedTrade] = []
        self.imports: list[LegacyImportRecord] = []

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def read(self, stmt: Any, **params: Any) -> Any:
        return self.conn.execute(stmt, params).first()

    def write(self, stmt: Any, params: dict[str, Any]) -> Any:
        self.touched = True
        return self.conn.execute(stmt, params)

    def commit(self) -> None:
        if self._conn is not None:
            self._conn.commit()

    def close(self) -> None:
        """Ends the unit; anything not committed is rolled back."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- rows ----------------------------------------------------------------------------------

    def event(
        self, kind: str, seq: int, ts: datetime, /, *, mode: str | None = None, account: str | None = None,
        symbol: str | None = None, position_id: str | None = None, trade_id: str | None = None,
        side: str | None = None, qty_before: float | None = None, qty_after: float | None = None,
        price: float | None = None, realized: float = 0.0, fee: float = 0.0, **detail: Any,
    ) -> None:
        self.write(INSERT_EVENT, {
            "seq": seq, "ts": ts, "kind": kind, "mode": mode, "account": account, "symbol": symbol,
            "position_id": position_id, "trade_id": trade_id, "side": side, "qty_before": qty_before,
            "qty_after": qty_after, "price": price, "realized_pnl": realized, "fee": fee,
            "detail": json.dumps(detail, default=str, sort_keys=True)})
        self.metrics.events.labels(kind).inc()
        if kind in PNL_EVENT_KINDS and mode is not None and account is not None and symbol is not None:
            self.money.append(MoneyEvent(ts=ts, mode=mode, account=account, symbol=symbol, realized=realized, fee=fee))

    def write_position(self, p: Position) -> None:
        values = position_values(p)
        if p.key in self.persisted:
            params = {f"v_{k}": v for k, v in values.items() if k not in _KEY}
            params.update(k_mode=p.mode, k_account=p.account, k_symbol=p.symbol)
            self.write(UPDATE_POSITION, params)
        else:
            self.write(INSERT_POSITION, values)
            self.persisted.add(p.key)
        p.dirty_since_seq = None
        p.last_write_mono = time.monotonic()

    def delete_position(self, key: tuple[str, str, str]) -> None:
        if key not in self.persisted:
            return
        mode, account, symbol = key
        self.write(DELETE_POSITION, {"k_mode": mode, "k_account": account, "k_symbol": symbol})
        self.persisted.discard(key)

    def record_trade(self, close: TradeClose) -> None:
        p = close.position
        trade = close.record()
        _mae, _mfe, mae_pct, mfe_pct = p.excursions()
        # getattr, not model_dump: the bus time type serializes to a string even in python mode.
        values = {_TRADE_COLUMNS.get(name, name): getattr(trade, name) for name in type(trade).model_fields}
        values.update(mae_pct=mae_pct, mfe_pct=mfe_pct, tp=p.tp, sl=p.sl, opened_seq=p.opened_seq)
        self.write(INSERT_TRADE, values)
        self.trades.append(trade)
        self.metrics.trades_closed.labels(p.mode, p.account).inc()

    def record_import(self, record: LegacyImportRecord) -> None:
        self.write(INSERT_IMPORT, {name: getattr(record, name) for name in type(record).model_fields})
        self.imports.append(record)

    def insert_issue(self, issue: Issue) -> int:
        result = self.write(INSERT_ISSUE, {
            "mode": issue.mode, "account": issue.account, "symbol": issue.symbol, "kind": issue.kind,
            "policy": issue.policy, "status": "open", "store_side": issue.store_side, "store_qty": issue.store_qty,
            "exchange_side": issue.exchange_side, "exchange_qty": issue.exchange_qty,
            "exchange_entry_price": issue.exchange_entry_price, "exchange_mark_price": issue.exchange_mark_price,
            "detail": issue.detail, "opened_seq": issue.opened_seq, "last_seen_seq": issue.last_seen_seq,
            "opened_at": issue.opened_at})
        return int(result.inserted_primary_key[0])

    def update_issue(self, issue: Issue) -> None:
        self.write(UPDATE_ISSUE, {"k_id": issue.row_id, **{f"v_{f}": getattr(issue, f) for f in _ISSUE_FIELDS}})

    def resolve_issue(self, issue: Issue, seq: int, resolution: str, by: str) -> None:
        self.write(RESOLVE_ISSUE, {"k_id": issue.row_id, "v_seq": seq, "v_resolution": resolution, "v_by": by})

    def write_meta(self, **values: Any) -> None:
        stmt = _META_UPDATES.get(frozenset(values))
        if stmt is None:
            stmt = update(_META).where(_META.c.id == 1).values({k: bindparam(f"v_{k}") for k in values})
            _META_UPDATES[frozenset(values)] = stmt
        self.write(stmt, {f"v_{k}": v for k, v in values.items()})
