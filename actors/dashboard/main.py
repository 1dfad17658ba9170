"""`v7 run dashboard`."""

from __future__ import annotations

from actors.base.logs import configure_logging
from actors.dashboard.actor import DashboardActor
from config.settings import Settings


def run(settings: Settings) -> int:
    configure_logging("dashboard", settings.log_level)
    actor = DashboardActor(settings)  # ConfigError (host, port) names the key; `v7 run` exits 2
    actor.install_signal_handlers()
    return actor.run()
