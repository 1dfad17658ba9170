"""`config/risk_limits.json`: caps, drawdown thresholds and the NAV anomaly guard (seed 001)."""

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


class RiskLimits(Section):
    nav_anomalies: NavAnomalyConfig = Field(default_factory=NavAnomalyConfig)
    drawdown: DrawdownConfig = Field(default_factory=DrawdownConfig)


def load_risk_limits(settings: Settings) -> RiskLimits:
    return load_json_config(settings.risk_limits, RiskLimits)
