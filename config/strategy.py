"""`config/strategy_config.json`: strategy parameters and the diagnostics block (seed 004)."""

from __future__ import annotations

from pydantic import Field

from config.loader import load_json_config
from config.settings import Section, Settings


class LivenessConfig(Section):
    """Seed 004 §1.1. A threshold <= 0 disables that check."""

    enabled: bool = True
    max_idle_signals_seconds: float = 600
    max_idle_orders_seconds: float = 1200
    max_idle_exits_seconds: float = 3600
    max_idle_router_events_seconds: float = 1800


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


class StrategyConfig(Section):
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)


def load_strategy_config(settings: Settings) -> StrategyConfig:
    return load_json_config(settings.strategy_config, StrategyConfig)
