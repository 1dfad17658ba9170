"""`v7 run diagnostics`."""

from __future__ import annotations

from actors.base.logs import configure_logging
from actors.diagnostics.actor import DiagnosticsActor
from config.settings import Settings
from config.strategy import load_strategy_config


def run(settings: Settings) -> int:
    configure_logging("diagnostics", settings.log_level)
    cfg = load_strategy_config(settings).diagnostics  # ConfigError names the key; `v7 run` exits 2
    actor = DiagnosticsActor(settings, cfg)
    actor.install_signal_handlers()
    return actor.run()
