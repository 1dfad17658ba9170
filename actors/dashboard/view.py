"""What the page shows, as one typed model: the JSON the browser receives (GET /api/view, SSE)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bus.messages import (
    ActorLiveness,
    ExitPipeline,
    Kpis,
    Model,
    NavAnomaly,
    PnlScope,
    ReconciliationView,
    RiskSnapshot,
    RouterState,
    SupervisorStatus,
)


class HubView(Model):
    connected: bool
    seq: int = 0
    last_seen_s: float | None = Field(default=None, description="Seconds since the last frame from the hub.")
    detail: str = ""


class PositionView(Model):
    symbol: str
    side: str
    qty: float
    entry_price: float
    mark_price: float
    notional: float
    unrealized_pnl: float
    realized_pnl: float
    tp: float | None = None
    sl: float | None = None
    opened_at: str | None = None
    age_s: float | None = None


class PositionsPanel(Model):
    rows: list[PositionView] = Field(default_factory=list)
    updated_age_s: float | None = None
    unrealized_total: float = 0.0


class PnlTodayPanel(Model):
    """Today's P&L from the positions store's `pnl_today` view (one row per mode and account)."""

    scopes: list[PnlScope] = Field(default_factory=list)
    active: str | None = Field(default=None, description="The active scope, 'MODE/account'.")
    # The active scope's total: scopes are never added together (SIM and LIVE are different money).
    total: float | None = None  # None: not reported yet


class NavPoint(Model):
    t: float  # unix seconds
    nav: float
    peak: float
    dd_pct: float
    gap_before: bool = Field(default=False, description="No NAV for longer than gap_after_s before this "
                                                        "point (the group stopped): the chart breaks the line.")


class NavPanel(Model):
    nav_total: float | None = None
    peak_nav: float | None = None
    dd_pct: float | None = None
    dd_state: str | None = None
    sources_ok: bool | None = None
    updated_age_s: float | None = None
    points: list[NavPoint] = Field(default_factory=list)
    gap_after_s: float = 60.0
    anomalies: list[NavAnomaly] = Field(default_factory=list)
    anomaly_count: int = 0


class KpiPanel(Model):
    kpis: Kpis | None = None
    risk: RiskSnapshot | None = None
    updated_age_s: float | None = None


class RouterPanel(Model):
    router: RouterState | None = None
    updated_age_s: float | None = None


class VetoHeatmap(Model):
    reasons: list[str] = Field(default_factory=list)
    symbols: list[str] = Field(default_factory=list)
    cells: list[list[int]] = Field(default_factory=list, description="cells[reason][symbol]")
    by_reason: dict[str, int] = Field(default_factory=dict)
    max: int = 0
    total_signals: int = 0
    total_orders: int = 0
    total_vetoes: int = 0


LivenessState = Literal["healthy", "idle", "never_seen", "clock_skew", "unreadable", "disabled", "unknown"]


class LivenessKindView(Model):
    kind: str
    state: LivenessState
    idle_s: float | None = None
    threshold_s: float | None = None
    text: str


class ActorView(ActorLiveness):
    name: str


class LivenessPanel(Model):
    reported: bool = Field(description="False until the diagnostics actor has published once.")
    diagnostics_age_s: float | None = None
    diagnostics_stale: bool = True
    kinds: list[LivenessKindView] = Field(default_factory=list)
    actors: list[ActorView] = Field(default_factory=list)
    supervisor: SupervisorStatus | None = None


class ExitHealthPanel(Model):
    exit_pipeline: ExitPipeline | None = None
    updated_age_s: float | None = None


class TradingHeader(Model):
    """What this group trades, in the page header: every figure below is for this scope."""

    mode: str = Field(description="SIM, DRY_RUN or LIVE.")
    network: str = Field(description="Where orders go: paper, testnet, demo or mainnet.")
    account: str
    halted: bool = False
    halt_detail: str = ""
    nav_guard: str | None = Field(default=None, description="Why entries stop on an anomalous NAV, and what to run.")


class DashboardView(Model):
    generated_at: str
    version: int
    trading: TradingHeader
    hub: HubView
    positions: PositionsPanel
    pnl_today: PnlTodayPanel
    nav: NavPanel
    kpis: KpiPanel
    router: RouterPanel
    vetoes: VetoHeatmap
    exit_health: ExitHealthPanel
    liveness: LivenessPanel
    # The positions store's open exchange/store mismatches; None when there are none (or no store).
    reconciliation: ReconciliationView | None = None
