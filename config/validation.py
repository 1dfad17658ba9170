"""Validate every configuration file at once (used by `v7 check-config` and `make run`).

Each entry loads one file with the same function the actor uses at start-up, so a bad key
found here is the same error the actor would stop with.
"""

from __future__ import annotations

from collections.abc import Callable

from config.risk import load_risk_limits
from config.settings import Settings
from config.strategy import load_strategy_config

# (label, loader) pairs; a loader raises ConfigError naming the file and key.
LOADERS: list[tuple[str, Callable[[Settings], object]]] = [
    ("strategy_config.json", load_strategy_config),
    ("risk_limits.json", load_risk_limits),
]


def validate_all(settings: Settings) -> list[str]:
    lines = [f"ok   runtime settings (home={settings.home}, mode={settings.mode}, port_base={settings.port_base})"]
    for label, loader in LOADERS:
        loader(settings)
        lines.append(f"ok   {label}")
    return lines
