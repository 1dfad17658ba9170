"""Events: what happened, named in the past tense.

Order and fill events are durable (the order audit trail; fills are applied to the positions
store once per exchange trade id); the rest is telemetry the hub counts and republishes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from bus.messages.base import (
    MAX_HEARTBEAT_INTERVAL_S,
    PROGRAMS,
    Count,
    Event,
    Fraction,
    Identifier,
    Model,
    Money,
    Pid,
    PositivePrice,
    PositiveQuantity,
    Price,
    Quantity,
    Ratio,
    ShortText,
    Symbol,
    UtcTime,
    utc_now,
)
from domain.vocabulary import QUOTE_ASSET, Direction, Liquidity, Mode, OrderSide, OrderStatus, OrderType


class Heartbeat(Event):
    """Every program sends one every `heartbeat_s` seconds; process liveness is built from these.
    `actor` must be the sender's own name (`src`)."""

    PRODUCERS = frozenset(PROGRAMS)
    type: Literal["heartbeat"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    actor: Identifier
    pid: Pid
    started_at: UtcTime
    # Diagnostics calls an actor stale after a few intervals: an hour bounds that threshold.
    interval_s: float = Field(gt=0.0, le=MAX_HEARTBEAT_INTERVAL_S)
    loops: Count = 0
    status: Literal["starting", "running", "degraded", "stopping"] = "running"
    detail: ShortText = ""


class SignalGenerated(Event):
    """The strategy wants a position in `symbol` (telemetry; counted by diagnostics)."""

    PRODUCERS = frozenset({"executor"})
    type: Literal["signal_generated"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    signal_id: Identifier
    symbol: Symbol
    direction: Direction
    score: Ratio
    factors: dict[Identifier, Ratio] = Field(default_factory=dict, max_length=100)


class EntryVetoed(Event):
    """A risk rule denied a signal, with a named reason (e.g. `max_open_positions`)."""

    PRODUCERS = frozenset({"executor"})
    type: Literal["entry_vetoed"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    signal_id: Identifier | None = None
    symbol: Symbol
    reason: Identifier
    detail: ShortText = ""


class OrderUpdated(Event):
    """An exchange order of an intent changed state (durable: the order audit trail)."""

    PRODUCERS = frozenset({"router"})
    DURABLE = True
    type: Literal["order_updated"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    intent_id: Identifier
    order_id: Identifier
    mode: Mode
    account: Identifier
    symbol: Symbol
    side: OrderSide
    status: OrderStatus
    order_type: OrderType
    post_only: bool = False
    reduce_only: bool = False
    price: Price | None = None
    qty: PositiveQuantity
    filled_qty: Quantity = 0.0
    reason: ShortText = ""
    intent_done: bool = Field(default=False, description="True on the last event of the intent.")


class OrderFilled(Event):
    """A trade executed on the exchange (durable; applied once per exchange trade id)."""

    PRODUCERS = frozenset({"router"})
    DURABLE = True
    type: Literal["order_filled"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    trade_id: Identifier = Field(description="Exchange trade id: the de-duplication key for fills.")
    order_id: Identifier
    intent_id: Identifier
    mode: Mode
    account: Identifier
    symbol: Symbol
    side: OrderSide
    qty: PositiveQuantity
    price: PositivePrice
    fee: Money = 0.0
    fee_asset: Identifier = QUOTE_ASSET
    liquidity: Liquidity
    reduce_only: bool = False
    arrival_mid: Price | None = None
    position_id: Identifier | None = Field(default=None, description="The position the intent opened or closes.")
    realized_pnl: Money | None = Field(
        default=None, description="PnL the exchange says this fill realized (closing part, before fees).")


RouterAction = Literal[
    "route_start", "post_maker", "reprice", "taker_fallback", "twap_slice",
    "filled", "partial_fill", "reject", "cancel", "expire", "complete",
]


class RouterActed(Event):
    """A meaningful routing action (seed 004 §2: feeds last_router_event_ts)."""

    PRODUCERS = frozenset({"router"})
    type: Literal["router_acted"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    intent_id: Identifier
    symbol: Symbol
    action: RouterAction
    detail: ShortText = ""
    price: Price | None = None
    qty: Quantity | None = None


class ExitScanCompleted(Event):
    """Result of one exit scan: coverage and mismatch (seed 004 §3)."""

    PRODUCERS = frozenset({"exit_scanner"})
    type: Literal["exit_scan_completed"]
    v: Literal[2]
    ts: UtcTime = Field(default_factory=utc_now)
    open_positions_count: Count
    tp_sl_registered_count: Count
    tp_sl_missing_count: Count
    underwater_without_tp_sl_count: Count
    tp_sl_coverage_pct: Fraction
    ledger_registry_mismatch: bool = Field(description="Seed 004: tp_sl_missing_count > 0.")
    triggers: Count = 0
    missing_symbols: list[Symbol] = Field(default_factory=list, max_length=1000)
    ledger_disagreement_symbols: list[Symbol] = Field(
        default_factory=list, max_length=1000,
        description="Open symbols whose ledger entry disagrees with the registry (position id, side or levels); "
                    "not part of ledger_registry_mismatch.")

    @model_validator(mode="after")
    def _mismatch_is_missing(self) -> ExitScanCompleted:
        """ledger_registry_mismatch is tp_sl_missing_count > 0, as seed 004 defines it (contract_breach)."""
        if self.ledger_registry_mismatch != (self.tp_sl_missing_count > 0):
            raise PydanticCustomError("contract_breach", "ledger_registry_mismatch must equal tp_sl_missing_count > 0",
                                      {})
        return self

    @model_validator(mode="after")
    def _counts_add_up(self) -> ExitScanCompleted:
        """tp_sl_registered_count + tp_sl_missing_count equals open_positions_count (contract_breach)."""
        if self.tp_sl_registered_count + self.tp_sl_missing_count != self.open_positions_count:
            raise PydanticCustomError(
                "contract_breach", "registered + missing must equal open_positions_count", {}
            )
        return self


class ReportedPosition(Model):
    """One non-flat position as the exchange reports it."""

    symbol: Symbol
    side: Direction
    qty: PositiveQuantity
    entry_price: PositivePrice
    mark_price: PositivePrice | None = None


class ExchangePositionsReported(Event):
    """What the exchange says a scope holds, to be compared with the store by the state writer.

    A symbol not listed in `symbols` is *unknown*, never flat; a report with
    `exchange_ok=False` changes nothing.
    """

    PRODUCERS = frozenset({"executor"})
    DURABLE = True
    type: Literal["exchange_positions_reported"]
    v: Literal[2]
    ts: UtcTime = Field(
        default_factory=utc_now,
        description="When the exchange was read. Symbols with a fill after this, or an order in flight, are "
                    "compared next time.")
    mode: Mode
    account: Identifier
    trigger: Literal["start", "periodic", "manual", "reconnect"] = "periodic"
    exchange_ok: bool = Field(description="False: the exchange could not be read; nothing is compared.")
    error: ShortText = ""
    symbols: list[Symbol] = Field(
        default_factory=list, max_length=1000,
        description="Symbols whose exchange state is known; a listed symbol absent from positions is flat.")
    positions: list[ReportedPosition] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _positions_are_known(self) -> ExchangePositionsReported:
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
