"""Documents: each message is the whole content of one `logs/state/<type>.json` file and replaces it.

Field names, required keys and the positions contract come from seeds 000/001/002/004. The
producer of each is fixed (`PRODUCERS`, enforced by the hub): the executor for positions,
ledger, KPIs, risk and factors; sync for NAV; the router for router state; diagnostics for
runtime diagnostics.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from bus.messages.base import (
    MAX_COUNT,
    Count,
    Document,
    Fraction,
    Identifier,
    Model,
    Money,
    NonNegativeMoney,
    NonNegativeRatio,
    Pid,
    PositiveMoney,
    PositivePrice,
    Price,
    Quantity,
    Ratio,
    Seconds,
    ShortText,
    Symbol,
    Total,
    UtcTime,
    utc_now,
)
from bus.messages.views import PnlScope, StoredPosition
from domain.vocabulary import DdState, Direction, Mode, PositionSide

# --- positions_state.json -------------------------------------------------------------------------


class PositionRow(Model):
    """One row of the exchange positions surface (seed 000 §1.4 `_collect_positions_rows`)."""

    symbol: Symbol
    side: PositionSide
    qty: Quantity = Field(description="Absolute position size in base units; 0 means flat.")
    entry_price: Price
    mark_price: Price
    notional: Price = Field(description="abs(qty * mark_price) in quote currency.")
    realized_pnl: Money = 0.0
    unrealized_pnl: Money = Field(description="(mark - entry) * qty * direction, direction +1 LONG / -1 SHORT.")
    leverage: float | None = Field(default=None, ge=0.0, le=1000.0)
    margin: NonNegativeMoney | None = None

    @model_validator(mode="after")
    def _live_row_has_prices(self) -> PositionRow:
        """A row with qty > 0 needs entry_price > 0 and mark_price > 0 (contract_breach)."""
        # Seeds 000/001: a live row with zero prices is how real PnL got overwritten by zeros.
        if self.qty > 0 and (self.entry_price <= 0 or self.mark_price <= 0):
            raise PydanticCustomError(
                "contract_breach",
                "non-zero qty row for {symbol} needs entry_price > 0 and mark_price > 0",
                {"symbol": self.symbol},
            )
        return self


class PositionsState(Document):
    """The executor's view of exchange positions, once per loop. Replaces positions_state.json."""
    PRODUCERS = frozenset({"executor"})

    DURABLE = True
    type: Literal["positions_state"]
    v: Literal[2]
    updated_at: UtcTime = Field(default_factory=utc_now)
    positions: list[PositionRow] = Field(default_factory=list, max_length=1000)
    stale_symbols: dict[Symbol, ShortText] = Field(
        default_factory=dict, max_length=1000,
        description="Symbols whose exchange data was unusable, with why: their row is the last good one.")

    @property
    def mode(self) -> Mode:
        return self.scope.mode

    @property
    def account(self) -> str:
        return self.scope.account


# --- positions_ledger.json ------------------------------------------------------------------------


class LedgerEntry(Model):
    symbol: Symbol
    side: Direction
    position_id: Identifier
    qty: Quantity
    entry_price: Price
    tp: PositivePrice | None = None
    sl: PositivePrice | None = None
    ttl_ts: UtcTime | None = None
    opened_at: UtcTime | None = None

    @classmethod
    def of_stored(cls, p: StoredPosition) -> LedgerEntry:
        """A store position as a ledger entry: how the executor and exit scanner restore from the store."""
        return cls(symbol=p.symbol, side=p.side, position_id=p.position_id, qty=p.qty, entry_price=p.entry_price,
                   tp=p.tp or None, sl=p.sl or None, ttl_ts=p.ttl_ts, opened_at=p.entry_time)


class TpSlLevels(Model):
    tp: PositivePrice | None = None
    sl: PositivePrice | None = None


class LedgerMetadata(Model):
    version: str = "v1"
    entry_count: Count


class PositionsLedger(Document):
    """Unified position + TP/SL ledger, once per executor loop. Replaces positions_ledger.json."""
    PRODUCERS = frozenset({"executor"})

    DURABLE = True
    type: Literal["positions_ledger"]
    v: Literal[2]
    updated_at: UtcTime = Field(default_factory=utc_now)
    entries: list[LedgerEntry] = Field(default_factory=list, max_length=1000)
    tp_sl_levels: dict[Symbol, TpSlLevels] = Field(default_factory=dict, max_length=1000)
    metadata: LedgerMetadata

    @property
    def mode(self) -> Mode:
        return self.scope.mode

    @property
    def account(self) -> str:
        return self.scope.account

    @model_validator(mode="after")
    def _count_matches(self) -> PositionsLedger:
        """metadata.entry_count equals the number of entries (contract_breach)."""
        if self.metadata.entry_count != len(self.entries):
            raise PydanticCustomError(
                "contract_breach",
                "metadata.entry_count {count} != len(entries) {n}",
                {"count": self.metadata.entry_count, "n": len(self.entries)},
            )
        return self


# --- kpis_v7.json ---------------------------------------------------------------------------------


class PortfolioKpis(Model):
    nav: NonNegativeMoney
    dd_pct: float = Field(ge=0.0, le=1.0)
    var_nav_pct: Ratio | None = None
    cvar_nav_pct: Ratio | None = None


class SymbolKpis(Model):
    pnl: Total
    pnl_pct: Ratio
    exposure_nav_pct: NonNegativeRatio


class NavKpis(Model):
    nav_total: NonNegativeMoney | None = Field(default=None, description="The last NAV the anomaly guard accepted.")
    nav_age_s: Seconds | None = None
    sources_ok: bool | None = Field(default=None, description="False: the newest reading was anomalous (not used).")


class RiskKpis(Model):
    dd_state: DdState | None = None
    atr_regime: str | None = Field(default=None, max_length=32)
    fee_pnl_ratio: Ratio | None = None


class RouterKpis(Model):
    policy_quality: str | None = Field(default=None, max_length=32)
    maker_first: bool | None = None
    maker_fill_share: Fraction | None = None
    avg_slippage_bps: Ratio | None = None
    reject_rate: Fraction | None = None


class PerformanceKpis(Model):
    expectancy: Total | None = Field(default=None, description="Mean net PnL per closed trade over `window`.")
    sharpe_state: str | None = Field(default=None, max_length=32)
    window: str | None = Field(default=None, max_length=64, description="The trades expectancy and sharpe_state "
                                                                         "cover.")


class Kpis(Document):
    """Both seed schemas: seed 000 (`portfolio`, `per_symbol`) and seed 002 (`nav`, `risk`, ...)."""
    PRODUCERS = frozenset({"executor"})

    type: Literal["kpis_v7"]
    v: Literal[2]
    updated_at: UtcTime = Field(default_factory=utc_now)
    ts: UtcTime | None = Field(default=None, description="Seed 002's timestamp key; equals updated_at.")
    portfolio: PortfolioKpis
    per_symbol: dict[Symbol, SymbolKpis] = Field(default_factory=dict, max_length=1000)
    nav: NavKpis = Field(default_factory=NavKpis)
    risk: RiskKpis = Field(default_factory=RiskKpis)
    router: RouterKpis = Field(default_factory=RouterKpis)
    performance: PerformanceKpis = Field(default_factory=PerformanceKpis)
    pnl_today: list[PnlScope] = Field(default_factory=list, max_length=100)


# --- nav_state.json -------------------------------------------------------------------------------


class NavAnomaly(Model):
    ts: UtcTime
    nav: Money
    previous_peak: Money
    reason: Literal["multiplier", "gap"]


class PeakResetRecord(Model):
    """The operator reset (nav_peak_reset) that set the current peak."""

    seq: int = Field(ge=1, le=MAX_COUNT, description="Hub seq of the nav_peak_reset message.")
    ts: UtcTime
    peak_nav: PositiveMoney
    reason: ShortText
    operator: Identifier


class NavState(Document):
    """NAV/AUM with peak and drawdown (seed 001 anomaly guard). Replaces nav_state.json."""
    PRODUCERS = frozenset({"sync"})

    type: Literal["nav_state"]
    v: Literal[2]
    updated_at: UtcTime = Field(default_factory=utc_now)
    nav_total: NonNegativeMoney
    aum: NonNegativeMoney
    wallet_balance: Money | None = None
    unrealized_pnl: Money | None = None
    peak_nav: NonNegativeMoney
    dd_pct: float = Field(ge=0.0, le=1.0)
    dd_state: DdState
    sources_ok: bool = True
    anomalies: list[NavAnomaly] = Field(default_factory=list, max_length=100)
    anomaly_count: Count = 0
    peak_reset: PeakResetRecord | None = Field(default=None, description="Last operator reset of the peak.")


# --- risk_snapshot.json ---------------------------------------------------------------------------


class RiskCaps(Model):
    max_symbol_exposure_nav_pct: NonNegativeRatio
    max_portfolio_exposure_nav_pct: NonNegativeRatio
    max_open_positions: Count
    min_notional: NonNegativeMoney


class RiskSnapshot(Document):
    PRODUCERS = frozenset({"executor"})
    type: Literal["risk_snapshot"]
    v: Literal[2]
    updated_at: UtcTime = Field(default_factory=utc_now)
    dd_state: DdState
    atr_regime: str | None = Field(default=None, max_length=32)
    var_nav_pct: Ratio | None = None
    cvar_nav_pct: Ratio | None = None
    fee_pnl_ratio: Ratio | None = None
    caps: RiskCaps
    exposure_nav_pct: dict[Symbol, NonNegativeRatio] = Field(default_factory=dict, max_length=1000)
    portfolio_exposure_nav_pct: NonNegativeRatio = 0.0
    vetoes: dict[Identifier, Count] = Field(default_factory=dict, max_length=1000,
                                            description="Veto counts by reason.")


# --- router_state.json ----------------------------------------------------------------------------


class TwapState(Model):
    threshold_notional: NonNegativeMoney
    active_parents: Count = 0
    slices_sent: Count = 0


class RouterState(Document):
    PRODUCERS = frozenset({"router"})
    type: Literal["router_state"]
    v: Literal[2]
    updated_at: UtcTime = Field(default_factory=utc_now)
    policy_quality: str | None = Field(default=None, max_length=32)
    maker_first: bool = True
    maker_fill_share: Fraction | None = None
    avg_slippage_bps: Ratio | None = None
    reject_rate: Fraction | None = None
    orders_total: Count = 0
    fills_total: Count = 0
    rejects_total: Count = 0
    twap: TwapState


# --- runtime_diagnostics.json ---------------------------------------------------------------------
# Seed 004 §4.1 field names; docs/runtime_diagnostics.md explains every field.

LivenessKind = Literal["signals", "orders", "exits", "router"]


class VetoCounters(Model):
    by_reason: dict[Identifier, Count] = Field(default_factory=dict, max_length=1000)
    by_reason_symbol: dict[Identifier, dict[Symbol, Count]] = Field(
        default_factory=dict, max_length=1000,
        description="Veto counts by reason, then symbol (the dashboard's heatmap).")
    total_signals: Count = 0
    total_orders: Count = 0
    total_vetoes: Count = 0
    last_signal_ts: UtcTime | None = None
    last_order_ts: UtcTime | None = None
    last_veto_ts: UtcTime | None = None


class ExitPipeline(Model):
    last_exit_scan_ts: UtcTime | None = None
    last_exit_trigger_ts: UtcTime | None = None
    last_router_event_ts: UtcTime | None = None
    open_positions_count: Count = 0
    tp_sl_registered_count: Count = 0
    tp_sl_missing_count: Count = 0
    underwater_without_tp_sl_count: Count = 0
    tp_sl_coverage_pct: Fraction = 0.0
    ledger_registry_mismatch: bool = Field(default=False, description="Seed 004: tp_sl_missing_count > 0.")
    missing_symbols: list[Symbol] = Field(default_factory=list, max_length=1000)
    ledger_disagreement_symbols: list[Symbol] = Field(
        default_factory=list, max_length=1000,
        description="Open symbols whose ledger entry disagrees with the exit registry (a separate check).")


class Liveness(Model):
    """Seed 004 §1.2. Keys of `details`/`missing` are the kinds: signals, orders, exits, router."""

    enabled: bool = True
    idle_signals: bool = False
    idle_orders: bool = False
    idle_exits: bool = False
    idle_router: bool = False
    details: dict[LivenessKind, Seconds] = Field(
        default_factory=dict, description="Seconds since the last event (threshold + 1 when unknown).")
    missing: dict[LivenessKind, bool] = Field(
        default_factory=dict, description="True when the kind has no usable timestamp (never seen).")
    thresholds: dict[LivenessKind, Seconds] = Field(default_factory=dict, description="Idle threshold per kind, s.")
    clock_skew_s: dict[LivenessKind, Seconds] = Field(
        default_factory=dict, description="Timestamps in the future beyond tolerance: seconds ahead (counted idle).")
    unparseable: dict[LivenessKind, bool] = Field(
        default_factory=dict, description="Timestamps that could not be read (counted missing and idle).")


class ActorLiveness(Model):
    """Process liveness of one actor, from its heartbeats and supervisord."""

    last_heartbeat_ts: UtcTime | None = None
    age_s: Seconds | None = None
    threshold_s: Seconds | None = Field(default=None, description="Silent longer than this = stale.")
    stale: bool = True
    status: str | None = Field(default=None, max_length=32, description="Status of the last heartbeat.")
    pid: Pid | None = None
    supervisor_state: str | None = Field(default=None, max_length=32, description="None = unknown.")
    crash_loop: bool = False
    reason: str = Field(default="", max_length=256, description="Why it is flagged; empty when healthy.")
    detail: str = Field(default="", max_length=512,
                        description="What the last heartbeat said with its status (why it is degraded).")


class SupervisorStatus(Model):
    reachable: bool = False
    checked_at: UtcTime | None = None
    detail: str = Field(default="", max_length=512)


class RuntimeDiagnosticsBlock(Model):
    veto_counters: VetoCounters = Field(default_factory=VetoCounters)
    exit_pipeline: ExitPipeline = Field(default_factory=ExitPipeline)
    liveness: Liveness = Field(default_factory=Liveness)
    actors: dict[Identifier, ActorLiveness] = Field(default_factory=dict, max_length=1024)
    supervisor: SupervisorStatus = Field(default_factory=SupervisorStatus)


class RuntimeDiagnostics(Document):
    """Seed 004 §4.1: everything under the `runtime_diagnostics` key."""
    PRODUCERS = frozenset({"diagnostics"})

    type: Literal["runtime_diagnostics"]
    v: Literal[2]
    updated_at: UtcTime = Field(default_factory=utc_now)
    runtime_diagnostics: RuntimeDiagnosticsBlock = Field(default_factory=RuntimeDiagnosticsBlock)


# --- factor_diagnostics.json ----------------------------------------------------------------------


class SymbolFactors(Model):
    factors: dict[Identifier, Ratio] = Field(default_factory=dict, max_length=100)
    score: Ratio | None = None
    direction: PositionSide | None = None


class FactorDiagnostics(Document):
    PRODUCERS = frozenset({"executor"})
    type: Literal["factor_diagnostics"]
    v: Literal[2]
    updated_at: UtcTime = Field(default_factory=utc_now)
    weights: dict[Identifier, Ratio] = Field(default_factory=dict, max_length=100)
    per_symbol: dict[Symbol, SymbolFactors] = Field(default_factory=dict, max_length=1000)
