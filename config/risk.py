"""`config/risk_limits.json`: caps, drawdown thresholds, the NAV anomaly guard (seed 001), VaR."""

from __future__ import annotations

from pydantic import Field, model_validator

from config.loader import load_json_config
from config.settings import Section, Settings


class NavAnomalyConfig(Section):
    """Seed 001 §3.1: a NAV this far above the previous peak is treated as bogus."""

    enabled: bool = True
    max_multiplier_intraday: float = Field(default=3.0, gt=1.0)
    max_gap_abs_usd: float = Field(default=20000.0, gt=0.0)


class DrawdownConfig(Section):
    """dd_pct (fraction of peak NAV) at which the drawdown state changes."""

    caution_pct: float = Field(default=0.05, gt=0.0, lt=1.0)
    defensive_pct: float = Field(default=0.10, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> DrawdownConfig:
        if self.caution_pct >= self.defensive_pct:
            raise ValueError("drawdown.caution_pct must be below drawdown.defensive_pct")
        return self


class CapsConfig(Section):
    """Exposure caps as fractions of NAV (0.30 = 30%), on gross notional."""

    max_symbol_exposure_nav_pct: float = Field(default=0.30, gt=0.0, le=10.0)
    max_portfolio_exposure_nav_pct: float = Field(default=0.60, gt=0.0, le=50.0)
    max_open_positions: int = Field(default=2, ge=0, le=1000)
    min_notional: float = Field(default=10.0, ge=0.0, description="Smallest entry worth sending (quote).")

    @model_validator(mode="after")
    def _ordered(self) -> CapsConfig:
        if self.max_symbol_exposure_nav_pct > self.max_portfolio_exposure_nav_pct:
            raise ValueError("caps.max_symbol_exposure_nav_pct must not exceed caps.max_portfolio_exposure_nav_pct")
        return self


class VarConfig(Section):
    """Historical VaR/CVaR of NAV from the NAV samples the executor has seen."""

    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    window: int = Field(default=600, ge=20, le=100_000, description="NAV samples kept.")
    min_samples: int = Field(default=30, ge=10, description="Fewer returns than this: VaR is null.")
    horizon_s: float = Field(
        default=86_400.0, gt=0.0, le=365 * 86_400.0,
        description="Horizon VaR/CVaR are quoted for (default one day): the per-sample figures are scaled by "
                    "sqrt(horizon / NAV sampling interval).")


class RiskLimits(Section):
    nav_anomalies: NavAnomalyConfig = Field(default_factory=NavAnomalyConfig)
    drawdown: DrawdownConfig = Field(default_factory=DrawdownConfig)
    caps: CapsConfig = Field(default_factory=CapsConfig)
    stale_nav_s: float = Field(default=15.0, gt=0.0, description="Entries are vetoed when NAV is older than this.")
    var: VarConfig = Field(default_factory=VarConfig)


def load_risk_limits(settings: Settings) -> RiskLimits:
    return load_json_config(settings.risk_limits, RiskLimits)
