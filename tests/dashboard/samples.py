"""Sample state documents for dashboard tests: what the trading actors would publish."""

from __future__ import annotations

from datetime import datetime, timedelta

from bus.messages import (
    Kpis,
    LedgerEntry,
    LedgerMetadata,
    Message,
    NavAnomaly,
    NavState,
    PnlScope,
    PortfolioKpis,
    PositionRow,
    PositionsLedger,
    PositionsState,
    RiskCaps,
    RiskSnapshot,
    RouterState,
    SymbolKpis,
    TpSlLevels,
    TwapState,
    utc_now,
)
from tests import SIM_SCOPE


def positions(symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")) -> PositionsState:
    rows = {
        "BTCUSDT": PositionRow(symbol="BTCUSDT", side="LONG", qty=0.01, entry_price=42000.0, mark_price=43000.0,
                               notional=430.0, unrealized_pnl=10.0),
        "ETHUSDT": PositionRow(symbol="ETHUSDT", side="SHORT", qty=0.5, entry_price=2500.0, mark_price=2550.0,
                               notional=1275.0, unrealized_pnl=-25.0),
        "SOLUSDT": PositionRow(symbol="SOLUSDT", side="LONG", qty=3.0, entry_price=150.0, mark_price=151.0,
                               notional=453.0, unrealized_pnl=3.0),
    }
    flat = PositionRow(symbol="XRPUSDT", side="FLAT", qty=0.0, entry_price=0.0, mark_price=0.0, notional=0.0,
                       unrealized_pnl=0.0)
    return PositionsState(scope=SIM_SCOPE, positions=[rows[s] for s in symbols] + [flat])


def ledger(now: datetime) -> PositionsLedger:
    entries = [
        LedgerEntry(symbol="BTCUSDT", side="LONG", position_id="p1", qty=0.01, entry_price=42000.0, tp=45000.0,
                    sl=41000.0, opened_at=now - timedelta(minutes=42)),
        LedgerEntry(symbol="ETHUSDT", side="SHORT", position_id="p2", qty=0.5, entry_price=2500.0,
                    opened_at=now - timedelta(hours=3)),
    ]
    return PositionsLedger(scope=SIM_SCOPE, entries=entries,
                           tp_sl_levels={"ETHUSDT": TpSlLevels(sl=2600.0)},
                           metadata=LedgerMetadata(entry_count=len(entries)))


def kpis() -> Kpis:
    return Kpis(scope=SIM_SCOPE,
        portfolio=PortfolioKpis(nav=10_000.0, dd_pct=0.02),
        per_symbol={"BTCUSDT": SymbolKpis(pnl=10.0, pnl_pct=0.001, exposure_nav_pct=0.043)},
        pnl_today=[PnlScope(mode="SIM", account="paper", realized_gross=13.7, fees=1.2, realized_net=12.5,
                            unrealized=-15.0, total=-2.5, closed_trades=3, open_positions=2)],
    )


def router() -> RouterState:
    return RouterState(scope=SIM_SCOPE,
        policy_quality="good", maker_fill_share=0.7, avg_slippage_bps=1.2, reject_rate=0.01,
                       orders_total=10, fills_total=9, rejects_total=1, twap=TwapState(threshold_notional=5000.0))


def risk() -> RiskSnapshot:
    return RiskSnapshot(scope=SIM_SCOPE, dd_state="NORMAL", caps=RiskCaps(max_symbol_exposure_nav_pct=0.2,
                                                         max_portfolio_exposure_nav_pct=1.0, max_open_positions=5,
                                                         min_notional=10.0))


def nav(nav_total: float, peak: float, at: datetime, anomaly_at: datetime | None = None) -> NavState:
    anomalies = [NavAnomaly(ts=anomaly_at, nav=37_000.0, previous_peak=peak, reason="multiplier")] if anomaly_at else []
    return NavState(scope=SIM_SCOPE,
        updated_at=at, nav_total=nav_total, aum=nav_total, peak_nav=peak,
                     dd_pct=max(0.0, (peak - nav_total) / peak), dd_state="NORMAL", anomalies=anomalies,
                     anomaly_count=len(anomalies))


def documents(now: datetime | None = None) -> list[Message]:
    now = now or utc_now()
    return [positions(), ledger(now), kpis(), router(), risk()]
