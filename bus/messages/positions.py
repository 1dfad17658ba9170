"""The positions store's messages and the read views it serves as snapshot keys.

Messages (all durable, all recorded in the store's audit trail with the seq that carried them):

- `ScopeSwitch`: make (mode, account) the active scope. The other scopes' open positions
  stay open and stay in the store; marks and ledger updates apply to the active scope.
- `ReconciliationReport`: what the exchange says, for the symbols in `symbols`, from the
  actor that sees the exchange. A symbol not listed is *unknown*, never flat; a report
  with `exchange_ok=False` changes nothing.
- `ReconciliationResolution`: an operator's decision on an open mismatch (`v7 reconcile`).
- `LegacyImport`: open positions read from an old single-process `positions_state.json`
  (`v7 import-legacy`), applied once per `digest`.

Views (snapshot keys of the state writer, served from the store): `open_positions`,
`active_scope`, `reconciliation`, `pnl_today`, `trades_today`, `legacy_imports`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from bus.messages.base import (
    Count,
    Identifier,
    Message,
    Model,
    NonNegativeTotal,
    PositivePrice,
    PositiveQuantity,
    Price,
    Quantity,
    ShortText,
    Symbol,
    Total,
    UtcTime,
    utc_now,
)
from bus.messages.state import LedgerEntry, PnlScope
from bus.messages.trading import Direction, Mode

ReconcilePolicy = Literal["warn", "adopt_exchange", "halt"]
MismatchKind = Literal["store_only", "exchange_only", "qty_mismatch", "side_mismatch", "fill_anomaly"]
ResolutionAction = Literal["adopt_exchange", "keep_store"]


# --- messages --------------------------------------------------------------------------------------


class ScopeSwitch(Message):
    """Make (mode, account) the active scope. Nothing is closed or hidden by a switch."""

    TYPE = "scope_switch"
    DURABLE = True
    type: Literal["scope_switch"] = "scope_switch"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    mode: Mode
    account: Identifier
    requested_by: Identifier = "operator"
    reason: ShortText = ""


class ExchangePosition(Model):
    """One non-flat position as the exchange reports it."""

    symbol: Symbol
    side: Direction
    qty: PositiveQuantity
    entry_price: PositivePrice
    mark_price: PositivePrice | None = None


class ReconciliationReport(Message):
    """Exchange positions for one scope, to be compared with the store by the state writer."""

    TYPE = "reconciliation_report"
    DURABLE = True
    type: Literal["reconciliation_report"] = "reconciliation_report"
    v: Literal[1] = 1
    ts: UtcTime = Field(
        default_factory=utc_now,
        description="When the exchange was read. Symbols with a fill after this, or an order in flight, are "
                    "compared next time.")
    mode: Mode
    account: Identifier
    trigger: Literal["start", "periodic", "manual"] = "periodic"
    exchange_ok: bool = Field(description="False: the exchange could not be read; nothing is compared.")
    error: ShortText = ""
    symbols: list[Symbol] = Field(
        default_factory=list, max_length=1000,
        description="Symbols whose exchange state is known; a listed symbol absent from positions is flat.")
    positions: list[ExchangePosition] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _positions_are_known(self) -> ReconciliationReport:
        known = set(self.symbols)
        seen: set[str] = set()
        for pos in self.positions:
            if pos.symbol not in known:
                raise PydanticCustomError(
                    "contract_breach", "position for {symbol} but {symbol} is not in symbols", {"symbol": pos.symbol})
            if pos.symbol in seen:
                raise PydanticCustomError(
                    "contract_breach", "two positions for {symbol}", {"symbol": pos.symbol})
            seen.add(pos.symbol)
        if not self.exchange_ok and self.positions:
            raise PydanticCustomError("contract_breach", "exchange_ok=False with positions", {})
        return self


class ReconciliationResolution(Message):
    """An operator's decision on the open mismatch of (mode, account, symbol)."""

    TYPE = "reconciliation_resolution"
    DURABLE = True
    type: Literal["reconciliation_resolution"] = "reconciliation_resolution"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    mode: Mode
    account: Identifier
    symbol: Symbol
    action: ResolutionAction
    operator: Identifier
    note: ShortText = ""


class LegacyPosition(Model):
    symbol: Symbol
    side: Direction
    qty: PositiveQuantity
    entry_price: PositivePrice
    mark_price: PositivePrice | None = None
    opened_at: UtcTime | None = None
    tp: PositivePrice | None = None
    sl: PositivePrice | None = None


class LegacyImport(Message):
    """Open positions from an old positions_state.json; applied once per digest."""

    TYPE = "legacy_import"
    DURABLE = True
    type: Literal["legacy_import"] = "legacy_import"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of (mode, account, file bytes).")
    source_path: ShortText
    source_format: Literal["updated_at", "updated_ts"]
    source_updated: UtcTime
    mode: Mode
    account: Identifier
    positions: list[LegacyPosition] = Field(default_factory=list, max_length=1000)


# --- views (snapshot keys) -------------------------------------------------------------------------


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
    realized_pnl: Total = Field(default=0.0, description="Gross PnL realized by partial reductions so far.")
    fees: Total = 0.0
    entry_intent_id: Identifier | None = None
    entry_signal_id: Identifier | None = None
    entry_arrival_mid: Price | None = None
    source: Literal["fill", "legacy_import", "reconcile"] = "fill"
    opened_seq: Count
    updated_seq: Count
    created_at: UtcTime
    updated_at: UtcTime

    def ledger_entry(self) -> LedgerEntry:
        """This position as a ledger entry: how the executor and exit scanner restore from the store."""
        return LedgerEntry(symbol=self.symbol, side=self.side, position_id=self.position_id, qty=self.qty,
                           entry_price=self.entry_price, tp=self.tp, sl=self.sl, ttl_ts=self.ttl_ts,
                           opened_at=self.entry_time)


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
    gross_pnl: Total
    fees: Total
    realized_pnl: Total
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


class PnlToday(Model):
    """`pnl_today` view: the UTC day it covers and one row per (mode, account)."""

    day: str
    scopes: list[PnlScope] = Field(default_factory=list)


__all__ = [
    "ActiveScope",
    "ClosedTrade",
    "ExchangePosition",
    "LegacyImport",
    "LegacyImportRecord",
    "LegacyPosition",
    "MismatchKind",
    "PnlToday",
    "ReconcilePolicy",
    "ReconciliationIssue",
    "ReconciliationReport",
    "ReconciliationResolution",
    "ReconciliationView",
    "ResolutionAction",
    "ScopeKey",
    "ScopeSwitch",
    "StoredPosition",
    "SymbolKey",
    "stored_in_scope",
]
