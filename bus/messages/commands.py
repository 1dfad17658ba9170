"""Commands: messages that ask one actor to act, named in the imperative.

Every command is durable: the hub journals it before anyone acts on it (commit before act),
and the journal is the audit trail of who asked for what. Mode and account are required on
every command that trades or changes a scope's state: a sender that leaves them out is
refused, never silently SIM.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from bus.messages.base import (
    CLI,
    Command,
    Identifier,
    Model,
    PositiveMoney,
    PositivePrice,
    PositiveQuantity,
    Price,
    ShortText,
    Symbol,
    UtcTime,
    utc_now,
)
from domain.vocabulary import Direction, ExitReason, IntentPurpose, Mode, OrderSide


class SubmitOrder(Command):
    """Get `qty` of `symbol` done on `side` (to the router). An entry carries its bracket and TTL."""

    PRODUCERS = frozenset({"executor", CLI})
    type: Literal["submit_order"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    intent_id: Identifier
    mode: Mode
    account: Identifier
    symbol: Symbol
    side: OrderSide
    qty: PositiveQuantity
    reduce_only: bool = False
    purpose: IntentPurpose = "entry"
    position_id: Identifier | None = None
    arrival_mid: Price | None = None
    tp: PositivePrice | None = None
    sl: PositivePrice | None = None
    ttl_ts: UtcTime | None = Field(default=None, description="Position time-to-live (exit at or after).")
    expires_at: UtcTime | None = Field(default=None, description="Routing deadline for the intent itself.")
    signal_id: Identifier | None = None


class RequestExit(Command):
    """Close one position with a reduce-only order (the exit scanner to the router)."""

    PRODUCERS = frozenset({"exit_scanner"})
    type: Literal["request_exit"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    intent_id: Identifier
    mode: Mode
    account: Identifier
    symbol: Symbol
    position_id: Identifier
    reason: ExitReason
    side: OrderSide = Field(description="Side of the closing order (SELL closes a LONG).")
    qty: PositiveQuantity
    mark_price: PositivePrice
    level: PositivePrice | None = Field(default=None, description="The TP or SL level crossed.")


class SwitchScope(Command):
    """Make (mode, account) the active scope. Nothing is closed or hidden by a switch."""

    PRODUCERS = frozenset({"executor", CLI})
    type: Literal["switch_scope"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    mode: Mode
    account: Identifier
    requested_by: Identifier = "operator"
    reason: ShortText = ""


class ResetNavPeak(Command):
    """Move peak NAV, audited (`v7 nav reset-peak`).

    The anomaly guard never lets the peak follow a NAV far above it, which is right for a
    ghost reading and wrong for a real deposit: after one, every reading stays anomalous and
    entries stay vetoed until an operator resets the peak. Sync applies the newest reset at
    its next NAV sample and records it in nav_state (`peak_reset`).
    """

    PRODUCERS = frozenset({CLI})
    type: Literal["reset_nav_peak"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    peak_nav: PositiveMoney | None = Field(default=None, description="New peak; None means the next NAV reading.")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    operator: Identifier = "operator"


class HaltEntries(Command):
    """Stop new entries in (mode, account) at once (`v7 halt`, `v7 flatten`): the executor opens
    nothing and the router cancels every entry still working. Exits go on. Lasts until
    `resume_entries`, across restarts (the hub keeps the newest of the two per scope)."""

    PRODUCERS = frozenset({CLI})
    type: Literal["halt_entries"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    mode: Mode
    account: Identifier
    operator: Identifier
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class ResumeEntries(Command):
    """Lift a halt of (mode, account) (`v7 resume`)."""

    PRODUCERS = frozenset({CLI})
    type: Literal["resume_entries"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    mode: Mode
    account: Identifier
    operator: Identifier
    reason: ShortText = ""


ResolutionAction = Literal["adopt_exchange", "keep_store"]


class ResolveMismatch(Command):
    """An operator's decision on the open reconciliation mismatch of (mode, account, symbol)."""

    PRODUCERS = frozenset({CLI})
    type: Literal["resolve_mismatch"]
    v: Literal[2]
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


class ImportLegacyPositions(Command):
    """Open positions read from an old single-process positions_state.json (`v7 import-legacy`);
    applied once per `digest`."""

    PRODUCERS = frozenset({CLI})
    type: Literal["import_legacy_positions"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of (mode, account, file bytes).")
    source_path: ShortText
    source_format: Literal["updated_at", "updated_ts"]
    source_updated: UtcTime
    mode: Mode
    account: Identifier
    positions: list[LegacyPosition] = Field(default_factory=list, max_length=1000)
