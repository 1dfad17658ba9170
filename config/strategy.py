"""`config/strategy_config.json`: the strategy, entries, routing and exits, plus the
diagnostics block (seed 004). Every block is validated at start-up; an unknown key or a bad
value stops the actor with the key named."""

from __future__ import annotations

from pydantic import Field, model_validator

from config.loader import load_json_config
from config.settings import Section, Settings


class LivenessConfig(Section):
    """Seed 004 §1.1. A threshold <= 0 disables that check."""

    enabled: bool = True
    max_idle_signals_seconds: float = 600
    max_idle_orders_seconds: float = 1200
    max_idle_exits_seconds: float = 3600
    max_idle_router_events_seconds: float = 1800
    # Beyond the seed: a timestamp this far in the future is read as "now" (small clock differences
    # between hosts); further ahead it counts as idle (docs/runtime_diagnostics.md, clock skew).
    clock_skew_tolerance_seconds: float = Field(default=5.0, ge=0.0)


class VetoMetricsConfig(Section):
    enabled: bool = True


class ExitPipelineConfig(Section):
    enabled: bool = True


class DiagnosticsConfig(Section):
    enabled: bool = True
    veto_metrics: VetoMetricsConfig = Field(default_factory=VetoMetricsConfig)
    exit_pipeline: ExitPipelineConfig = Field(default_factory=ExitPipelineConfig)
    liveness: LivenessConfig = Field(default_factory=LivenessConfig)
    heartbeat_missed_intervals: int = Field(default=3, ge=1, description="Missed heartbeats before stale.")
    publish_interval_seconds: float = Field(
        default=5.0, gt=0.0, le=3600.0, description="runtime_diagnostics is re-sent at least this often.")
    supervisor_poll_seconds: float = Field(default=5.0, gt=0.0, le=3600.0)


class FactorWeights(Section):
    trend: float = Field(default=0.5, ge=0.0, le=1.0)
    momentum: float = Field(default=0.35, ge=0.0, le=1.0)
    volatility: float = Field(default=0.15, ge=0.0, le=1.0)


class SignalConfig(Section):
    """Factor model on closed bars. Factors are in [-1, 1]; score = weighted sum."""

    bars: int = Field(default=120, ge=30, le=2000, description="Bars fetched per symbol each loop.")
    ema_fast: int = Field(default=8, ge=2, le=500)
    ema_slow: int = Field(default=21, ge=3, le=1000)
    atr_period: int = Field(default=14, ge=2, le=500)
    momentum_bars: int = Field(default=10, ge=1, le=500)
    vol_window: int = Field(default=50, ge=5, le=1000, description="Bars of ATR the regime is measured against.")
    atr_low_ratio: float = Field(default=0.8, gt=0.0, description="ATR/average below this: regime 'low'.")
    atr_high_ratio: float = Field(default=1.25, gt=0.0, description="ATR/average above this: regime 'high'.")
    entry_threshold: float = Field(default=0.3, gt=0.0, le=1.0, description="|score| needed for a signal.")
    weights: FactorWeights = Field(default_factory=FactorWeights)

    @model_validator(mode="after")
    def _consistent(self) -> SignalConfig:
        if self.ema_fast >= self.ema_slow:
            raise ValueError("signal.ema_fast must be below signal.ema_slow")
        if self.atr_low_ratio >= self.atr_high_ratio:
            raise ValueError("signal.atr_low_ratio must be below signal.atr_high_ratio")
        needed = max(self.ema_slow, self.atr_period + self.vol_window, self.momentum_bars + 1)
        if self.bars < needed:
            raise ValueError(f"signal.bars must be at least {needed} for these periods")
        return self


class EntryConfig(Section):
    """Position sizing and the bracket every entry carries."""

    position_nav_pct: float = Field(default=0.25, gt=0.0, le=1.0, description="Target notional as a fraction of NAV.")
    caution_size_factor: float = Field(default=0.5, ge=0.0, le=1.0, description="Size multiplier in CAUTION.")
    tp_atr_mult: float = Field(default=2.0, gt=0.0, le=50.0)
    sl_atr_mult: float = Field(default=1.5, gt=0.0, le=50.0)
    ttl_s: float = Field(default=240.0, gt=0.0, description="Position time-to-live; the exit scanner closes it after.")
    intent_expiry_s: float = Field(default=60.0, gt=0.0, description="Routing deadline for an entry intent.")


class RouterConfig(Section):
    maker_first: bool = True
    reprice_after_s: float = Field(default=2.0, gt=0.0, description="Unfilled maker order is repriced after this.")
    max_reprices: int = Field(default=2, ge=0, le=20, description="Maker attempts after the first, then taker.")
    twap_threshold_notional: float = Field(default=1500.0, gt=0.0, description="Intents above this are sliced.")
    twap_slices: int = Field(default=3, ge=2, le=50)
    twap_interval_s: float = Field(default=2.0, ge=0.0)
    max_place_retries: int = Field(default=3, ge=0, le=20, description="Retries after an exchange reject.")
    sl_taker: bool = Field(default=True, description="Stop-loss exits go straight to taker.")
    state_every_s: float = Field(default=2.0, gt=0.0, description="Router state publishing period.")
    quality_window: int = Field(default=200, ge=10, le=100_000, description="Fills the quality rates cover.")


class ExitConfig(Section):
    retrigger_after_s: float = Field(
        default=5.0, gt=0.0, description="A position still open this long after its exit finished is retriggered.")


class StrategyConfig(Section):
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    signal: SignalConfig = Field(default_factory=SignalConfig)
    entry: EntryConfig = Field(default_factory=EntryConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    exits: ExitConfig = Field(default_factory=ExitConfig)


def load_strategy_config(settings: Settings) -> StrategyConfig:
    return load_json_config(settings.strategy_config, StrategyConfig)
