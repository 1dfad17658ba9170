"""The store's tables (SQLAlchemy 2 declarative). Schema history lives in `schema.py`.

Times are stored as naive UTC and come back timezone-aware (`UtcDateTime`), so SQLite and
PostgreSQL behave the same. Prices and quantities are floats, as on the bus.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    """One row: the schema version this database is at (see schema.MIGRATIONS)."""

    __tablename__ = "schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    migrated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StoreMeta(Base):
    """One row: how far the journal has been applied, and the active scope.

    `applied_seq`: every committed message up to here is reflected in the tables.
    `replay_from_seq`: marks after this seq may hold trade extremes not yet written; on
    start-up the writer replays them from the journal (which it keeps that far back).
    """

    __tablename__ = "store_meta"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_seq: Mapped[int] = mapped_column(Integer)
    replay_from_seq: Mapped[int] = mapped_column(Integer)
    active_mode: Mapped[str] = mapped_column(String(8))
    active_account: Mapped[str] = mapped_column(String(128))
    active_since_seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OpenPositionRow(Base):
    """One row per (mode, account, symbol) while a position is open (seed 003 OpenPosition)."""

    __tablename__ = "open_position"
    mode: Mapped[str] = mapped_column(String(8), primary_key=True)
    account: Mapped[str] = mapped_column(String(128), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    side: Mapped[str] = mapped_column(String(8))
    qty: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)
    entry_time: Mapped[datetime] = mapped_column(UtcDateTime)
    position_id: Mapped[str] = mapped_column(String(128))
    tp: Mapped[float | None] = mapped_column(Float)
    sl: Mapped[float | None] = mapped_column(Float)
    ttl_ts: Mapped[datetime | None] = mapped_column(UtcDateTime)
    entry_intent_id: Mapped[str | None] = mapped_column(String(128))
    entry_signal_id: Mapped[str | None] = mapped_column(String(128))
    entry_arrival_mid: Mapped[float | None] = mapped_column(Float)
    trade_min_price: Mapped[float] = mapped_column(Float)
    trade_max_price: Mapped[float] = mapped_column(Float)
    mark_price: Mapped[float | None] = mapped_column(Float)
    peak_qty: Mapped[float] = mapped_column(Float)
    entry_qty_total: Mapped[float] = mapped_column(Float)
    entry_notional: Mapped[float] = mapped_column(Float)
    exit_qty_total: Mapped[float] = mapped_column(Float)
    exit_notional: Mapped[float] = mapped_column(Float)
    realized_pnl: Mapped[float] = mapped_column(Float)
    fees: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    opened_seq: Mapped[int] = mapped_column(Integer)
    updated_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TradeRecordRow(Base):
    """One row per closed trade."""

    __tablename__ = "trade_record"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mode: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    position_id: Mapped[str] = mapped_column(String(128))
    qty: Mapped[float] = mapped_column(Float)
    entry_time: Mapped[datetime] = mapped_column(UtcDateTime)
    entry_price: Mapped[float] = mapped_column(Float)
    exit_time: Mapped[datetime] = mapped_column(UtcDateTime)
    exit_price: Mapped[float] = mapped_column(Float)
    gross_pnl: Mapped[float] = mapped_column(Float)
    fees: Mapped[float] = mapped_column(Float)
    realized_pnl: Mapped[float] = mapped_column(Float)
    mae: Mapped[float] = mapped_column(Float)
    mfe: Mapped[float] = mapped_column(Float)
    mae_pct: Mapped[float] = mapped_column(Float)
    mfe_pct: Mapped[float] = mapped_column(Float)
    trade_min_price: Mapped[float] = mapped_column(Float)
    trade_max_price: Mapped[float] = mapped_column(Float)
    tp: Mapped[float | None] = mapped_column(Float)
    sl: Mapped[float | None] = mapped_column(Float)
    close_reason: Mapped[str] = mapped_column(String(32))
    opened_seq: Mapped[int] = mapped_column(Integer)
    closed_seq: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_trade_record_scope_exit", "mode", "account", "exit_time"),
        UniqueConstraint("mode", "account", "position_id", "closed_seq", name="uq_trade_record_close"),
    )


class PositionEventRow(Base):
    """The audit trail: every open, add, reduce, close, TP/SL change and reconciliation decision."""

    __tablename__ = "position_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str | None] = mapped_column(String(8))
    account: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str | None] = mapped_column(String(32))
    position_id: Mapped[str | None] = mapped_column(String(128))
    trade_id: Mapped[str | None] = mapped_column(String(128))
    side: Mapped[str | None] = mapped_column(String(8))
    qty_before: Mapped[float | None] = mapped_column(Float)
    qty_after: Mapped[float | None] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float)
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    fee: Mapped[float] = mapped_column(Float, default=0.0)
    detail: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (Index("ix_position_event_scope_ts", "mode", "account", "ts"),)


class FillRow(Base):
    """Every applied fill; the unique key is what makes a resent fill apply once."""

    __tablename__ = "fill_record"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mode: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    trade_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(String(128))
    intent_id: Mapped[str] = mapped_column(String(128))
    side: Mapped[str] = mapped_column(String(8))
    qty: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    seq: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("mode", "account", "symbol", "trade_id", name="uq_fill_trade_id"),)


class IntentRow(Base):
    """Order intents, so a fill can find the TP/SL/TTL and position id its position opens with."""

    __tablename__ = "order_intent"
    intent_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    qty: Mapped[float] = mapped_column(Float)
    purpose: Mapped[str] = mapped_column(String(16))
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    position_id: Mapped[str | None] = mapped_column(String(128))
    tp: Mapped[float | None] = mapped_column(Float)
    sl: Mapped[float | None] = mapped_column(Float)
    ttl_ts: Mapped[datetime | None] = mapped_column(UtcDateTime)
    arrival_mid: Mapped[float | None] = mapped_column(Float)
    signal_id: Mapped[str | None] = mapped_column(String(128))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    seq: Mapped[int] = mapped_column(Integer)


class ReconciliationIssueRow(Base):
    """A store/exchange mismatch, open until resolved (by agreement, policy or operator)."""

    __tablename__ = "reconciliation_issue"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mode: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8))
    store_side: Mapped[str | None] = mapped_column(String(8))
    store_qty: Mapped[float] = mapped_column(Float)
    exchange_side: Mapped[str | None] = mapped_column(String(8))
    exchange_qty: Mapped[float] = mapped_column(Float)
    exchange_entry_price: Mapped[float | None] = mapped_column(Float)
    exchange_mark_price: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")
    opened_seq: Mapped[int] = mapped_column(Integer)
    last_seen_seq: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_seq: Mapped[int | None] = mapped_column(Integer)
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolved_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (Index("ix_reconciliation_issue_open", "status", "mode", "account", "symbol"),)


class LegacyImportRow(Base):
    __tablename__ = "legacy_import"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_path: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(128))
    imported: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)
