"""Store views: what the positions store serves (snapshot keys) and publishes (`$view:<key>` frames).

The state writer's positions store keeps these in memory and publishes each one whenever a
commit changes it (docs/bus_protocol.md, section 4); a subscriber keeps them like documents
(`bus.subscriber.Subscriber.view`). Views are read models: nobody sends them to the hub.

Realized P&L is named by what it includes, in every view: `realized_gross` before fees,
`fees`, and `realized_net` = realized_gross - fees.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from bus.messages.base import (
    Count,
    Identifier,
    Model,
    NonNegativeTotal,
    Price,
    Quantity,
    ShortText,
    Symbol,
    Total,
    UtcTime,
)
from domain.vocabulary import Direction, Mode, ReconcilePolicy

# The views the hub publishes when they change, in the order it publishes them.
VIEW_KEYS: Final = ("open_positions", "active_scope", "reconciliation", "pnl_today", "trades_today", "legacy_imports")

MismatchKind = Literal["store_only", "exchange_only", "qty_mismatch", "side_mismatch", "fill_anomaly"]


class StoredPosition(Model):
    """One open position as the store holds it (`open_positions` view)."""

    mode: Mode
    account: Identifier
    symbol: Symbol
    side: Direction
    qty: Quantity
    entry_price: Price
    entry_time: UtcTime
    position_id: Identifier
    tp: Price | None = None
    sl: Price | None = None
    ttl_ts: UtcTime | None = None
    trade_min_price: Price
    trade_max_price: Price
    mark_price: Price | None = None
    unrealized_pnl: Total = 0.0
    realized_gross: Total = Field(default=0.0, description="PnL realized by partial reductions so far, before fees.")
    fees: Total = Field(default=0.0, description="Fees of this trade's fills so far.")
    entry_intent_id: Identifier | None = None
    entry_signal_id: Identifier | None = None
    entry_arrival_mid: Price | None = None
    source: Literal["fill", "legacy_import", "reconcile"] = "fill"
    opened_seq: Count
    updated_seq: Count
    created_at: UtcTime
    updated_at: UtcTime


def stored_in_scope(raw: list[dict] | None, mode: str, account: str) -> list[StoredPosition] | None:
    """The `open_positions` view of one scope; None if the hub did not serve it."""
    if raw is None:
        return None
    positions = (StoredPosition.model_validate(p) for p in raw)
    return [p for p in positions if (p.mode, p.account) == (mode, account)]


class ActiveScope(Model):
    mode: Mode
    account: Identifier
    since_seq: Count


class ScopeKey(Model):
    mode: Mode
    account: Identifier


class SymbolKey(Model):
    mode: Mode
    account: Identifier
    symbol: Symbol


class ReconciliationIssue(Model):
    mode: Mode
    account: Identifier
    symbol: Symbol
    kind: MismatchKind
    policy: ReconcilePolicy
    store_side: Direction | None = None
    store_qty: Quantity = 0.0
    exchange_side: Direction | None = None
    exchange_qty: Quantity = 0.0
    exchange_entry_price: Price | None = None
    exchange_mark_price: Price | None = None
    detail: ShortText = ""
    opened_seq: Count
    last_seen_seq: Count
    opened_at: UtcTime


class ReconciliationView(Model):
    """Open mismatches; `blocked` symbols take no new entries, `halted` scopes take none at all."""

    policy: ReconcilePolicy
    issues: list[ReconciliationIssue] = Field(default_factory=list)
    blocked: list[SymbolKey] = Field(default_factory=list)
    halted: list[ScopeKey] = Field(default_factory=list)
    last_report_seq: dict[str, Count] = Field(
        default_factory=dict, description="'MODE/account' -> seq of the last report with exchange data.")


class ClosedTrade(Model):
    """One closed trade (`trades_today` view and `v7 pnl --trades`)."""

    mode: Mode
    account: Identifier
    symbol: Symbol
    side: Direction
    position_id: Identifier
    qty: Quantity
    entry_time: UtcTime
    entry_price: Price
    exit_time: UtcTime
    exit_price: Price
    realized_gross: Total = Field(description="PnL realized by every reduction and the close, before fees.")
    fees: Total = Field(description="Fees of every fill of the trade, the opening ones included.")
    realized_net: Total = Field(description="realized_gross - fees.")
    mae: NonNegativeTotal
    mfe: NonNegativeTotal
    trade_min_price: Price
    trade_max_price: Price
    close_reason: str
    closed_seq: Count


class LegacyImportRecord(Model):
    digest: str
    source_path: ShortText
    mode: Mode
    account: Identifier
    imported: Count
    skipped: Count
    seq: Count
    imported_at: UtcTime


class SymbolPnl(Model):
    """One symbol's P&L of the day in one scope."""

    realized_gross: Total = Field(description="PnL realized by the day's reductions and closes, before fees.")
    fees: Total = Field(description="Fees of the day's fills, the opening ones and those of still open positions "
                                    "included.")
    realized_net: Total = Field(description="realized_gross - fees.")
    unrealized: Total = Field(description="(mark - entry) * qty * direction of the open position at its last mark "
                                          "(for a past day: at the last mark of that day).")
    total: Total = Field(description="realized_net + unrealized.")
    closed_trades: Count = 0


class PnlScope(Model):
    """One (mode, account)'s P&L of the day: every figure is its symbol rows added up, in symbol order."""

    mode: Mode
    account: Identifier
    realized_gross: Total
    fees: Total
    realized_net: Total
    unrealized: Total
    total: Total
    closed_trades: Count = 0
    open_positions: Count = 0
    symbols: dict[Symbol, SymbolPnl] = Field(default_factory=dict, max_length=1000)


class PnlToday(Model):
    """`pnl_today` view: the UTC day it covers and one row per (mode, account); the active scope always has one."""

    day: str
    scopes: list[PnlScope] = Field(default_factory=list)
