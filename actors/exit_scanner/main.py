"""`v7 run exit_scanner`."""

from __future__ import annotations

from actors.base.logs import configure_logging
from config.settings import Settings


def run(settings: Settings) -> int:
    from actors.exit_scanner.actor import ExitScanner

    configure_logging("exit_scanner", settings.log_level)
    actor = ExitScanner(settings)
    actor.install_signal_handlers()
    return actor.run()
