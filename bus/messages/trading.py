"""Trading events and commands: what the actors tell each other through the hub.

Commands are imperative in meaning (an order intent asks the router to act, an exit trigger
asks for a reduce-only exit); events report what happened (order event, fill, router event).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from bus.messages.base import (
    Count,
    Fraction,
    Identifier,
    Message,
    Money,
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

OrderSide = Literal["BUY", "SELL"]
Mode = Literal["SIM", "LIVE"]
Direction = Literal["LONG", "SHORT"]


class Signal(Message):
    """The strategy wants a position in `symbol` (telemetry; counted by diagnostics)."""

    TYPE = "signal"
    type: Literal["signal"] = "signal"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    signal_id: Identifier
    symbol: Symbol
    direction: Direction
    score: Ratio
    factors: dict[Identifier, Ratio] = Field(default_factory=dict, max_length=100)


class Veto(Message):
    """A risk rule denied a signal, with a named reason (e.g. `max_open_positions`)."""

    TYPE = "veto"
    type: Literal["veto"] = "veto"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    signal_id: Identifier | None = None
    symbol: Symbol
    reason: Identifier
    detail: ShortText = ""


class OrderIntent(Message):
    """Command to the router: get `qty` of `symbol` done on `side` (durable)."""

    TYPE = "order_intent"
    DURABLE = True
    type: Literal["order_intent"] = "order_intent"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    intent_id: Identifier
    mode: Mode = "SIM"
    account: Identifier = "paper"
    symbol: Symbol
    side: OrderSide
    qty: PositiveQuantity
    reduce_only: bool = False
    purpose: Literal["entry", "exit_tp", "exit_sl", "exit_ttl", "exit_manual", "reconcile"] = "entry"
    position_id: Identifier | None = None
    arrival_mid: Price | None = None
    tp: PositivePrice | None = None
    sl: PositivePrice | None = None
    ttl_ts: UtcTime | None = Field(default=None, description="Position time-to-live (exit at or after).")
    expires_at: UtcTime | None = Field(default=None, description="Routing deadline for the intent itself.")
    signal_id: Identifier | None = None


OrderStatus = Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED"]
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED"})


class OrderEvent(Message):
    """An exchange order changed state (durable: the order audit trail)."""

    TYPE = "order_event"
    DURABLE = True
    type: Literal["order_event"] = "order_event"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    intent_id: Identifier
    order_id: Identifier
    mode: Mode = "SIM"
    account: Identifier = "paper"
    symbol: Symbol
    side: OrderSide
    status: OrderStatus
    order_type: Literal["LIMIT", "MARKET"]
    post_only: bool = False
    reduce_only: bool = False
    price: Price | None = None
    qty: PositiveQuantity
    filled_qty: Quantity = 0.0
    reason: ShortText = ""
    intent_done: bool = Field(default=False, description="True on the last event of the intent.")


class Fill(Message):
    """A trade executed on the exchange (durable; applied once per exchange trade id)."""

    TYPE = "fill"
    DURABLE = True
    type: Literal["fill"] = "fill"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    trade_id: Identifier = Field(description="Exchange trade id: the de-duplication key for fills.")
    order_id: Identifier
    intent_id: Identifier
    mode: Mode = "SIM"
    account: Identifier = "paper"
    symbol: Symbol
    side: OrderSide
    qty: PositiveQuantity
    price: PositivePrice
    fee: Money = 0.0
    fee_asset: Identifier = "USDT"
    liquidity: Literal["maker", "taker"]
    reduce_only: bool = False
    arrival_mid: Price | None = None
    position_id: Identifier | None = Field(default=None, description="The position the intent opened or closes.")
    realized_pnl: Money | None = Field(
        default=None, description="PnL the exchange says this fill realized (closing part, before fees).")


class RouterEvent(Message):
    """A meaningful routing action (seed 004 §2: feeds last_router_event_ts)."""

    TYPE = "router_event"
    type: Literal["router_event"] = "router_event"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    intent_id: Identifier
    symbol: Symbol
    action: Literal[
        "route_start", "post_maker", "reprice", "taker_fallback", "twap_slice",
        "filled", "partial_fill", "reject", "cancel", "expire", "complete",
    ]
    detail: ShortText = ""
    price: Price | None = None
    qty: Quantity | None = None


class ExitTrigger(Message):
    """The exit scanner asks for a reduce-only exit of one position (durable)."""

    TYPE = "exit_trigger"
    DURABLE = True
    type: Literal["exit_trigger"] = "exit_trigger"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    intent_id: Identifier
    mode: Mode = "SIM"
    account: Identifier = "paper"
    symbol: Symbol
    position_id: Identifier
    reason: Literal["TP", "SL", "TTL"]
    side: OrderSide = Field(description="Side of the closing order (SELL closes a LONG).")
    qty: PositiveQuantity
    mark_price: PositivePrice
    level: PositivePrice | None = Field(default=None, description="The TP or SL level crossed.")


class ExitScanStatus(Message):
    """Result of one exit scan: coverage and mismatch (seed 004 §3)."""

    TYPE = "exit_scan_status"
    type: Literal["exit_scan_status"] = "exit_scan_status"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    open_positions_count: Count
    tp_sl_registered_count: Count
    tp_sl_missing_count: Count
    underwater_without_tp_sl_count: Count
    tp_sl_coverage_pct: Fraction
    ledger_registry_mismatch: bool
    triggers: Count = 0
    missing_symbols: list[Symbol] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _counts_add_up(self) -> ExitScanStatus:
        """tp_sl_registered_count + tp_sl_missing_count equals open_positions_count (contract_breach)."""
        if self.tp_sl_registered_count + self.tp_sl_missing_count != self.open_positions_count:
            raise PydanticCustomError(
                "contract_breach", "registered + missing must equal open_positions_count", {}
            )
        return self


__all__ = [
    "TERMINAL_ORDER_STATUSES",
    "ExitScanStatus",
    "ExitTrigger",
    "Fill",
    "Fraction",
    "OrderEvent",
    "OrderIntent",
    "RouterEvent",
    "Signal",
    "Veto",
]
