"""The KPI snapshot (kpis_v7.json) in both seed schemas, built from documents already computed.

Seed 000: `portfolio{nav, dd_pct, var_nav_pct, cvar_nav_pct}`, `per_symbol{pnl, pnl_pct,
exposure_nav_pct}`. Seed 002: `nav{}`, `risk{}`, `router{}`, `performance{}`. NAV and drawdown
come from the sync actor's nav_state (one NAV in the system), router quality from the router's
router_state, P&L from the positions store's `pnl_today` view; nothing here recomputes them.
A field is null only where no data exists yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from actors.executor.performance import WINDOW, Performance
from bus.messages import (
    Kpis,
    NavKpis,
    NavState,
    PerformanceKpis,
    PnlScope,
    PortfolioKpis,
    PositionRow,
    RiskKpis,
    RouterKpis,
    RouterState,
    Scope,
    SymbolKpis,
)


def build_kpis(
    doc_scope: Scope,
    now: datetime,
    nav: NavState,
    rows: Sequence[PositionRow],
    symbols: Sequence[str],
    scope: PnlScope | None,
    pnl_today: Sequence[PnlScope],
    var_nav_pct: float | None,
    cvar_nav_pct: float | None,
    atr_regime: str | None,
    fee_pnl_ratio: float | None,
    router: RouterState | None,
    performance: Performance,
    latest_ok: bool = True,
) -> Kpis:
    """`nav` is the last NAV the anomaly guard accepted (`latest_ok` False: the newest reading was
    anomalous and is not used). `scope` is this executor's row of the store's `pnl_today` view;
    per-symbol P&L and the `pnl_today` block come from that one view, so they add up exactly."""
    nav_total = nav.nav_total
    by_symbol = {r.symbol: r for r in rows}
    per_symbol = {}
    for symbol in symbols:
        pnl = scope.symbols[symbol].total if scope is not None and symbol in scope.symbols else 0.0
        row = by_symbol.get(symbol)
        exposure = row.notional if row else 0.0
        per_symbol[symbol] = SymbolKpis(
            pnl=pnl,
            pnl_pct=pnl / nav_total if nav_total > 0 else 0.0,
            exposure_nav_pct=exposure / nav_total if nav_total > 0 else 0.0,
        )
    return Kpis(
        scope=doc_scope,
        updated_at=now,
        ts=now,
        portfolio=PortfolioKpis(nav=nav_total, dd_pct=nav.dd_pct, var_nav_pct=var_nav_pct, cvar_nav_pct=cvar_nav_pct),
        per_symbol=per_symbol,
        nav=NavKpis(nav_total=nav_total, nav_age_s=max(0.0, (now - nav.updated_at).total_seconds()),
                    sources_ok=latest_ok),
        risk=RiskKpis(dd_state=nav.dd_state, atr_regime=atr_regime, fee_pnl_ratio=fee_pnl_ratio),
        router=RouterKpis(
            policy_quality=router.policy_quality, maker_first=router.maker_first,
            maker_fill_share=router.maker_fill_share, avg_slippage_bps=router.avg_slippage_bps,
            reject_rate=router.reject_rate,
        ) if router else RouterKpis(),
        performance=PerformanceKpis(expectancy=performance.expectancy, sharpe_state=performance.sharpe_state,
                                    window=WINDOW),
        pnl_today=list(pnl_today),
    )
