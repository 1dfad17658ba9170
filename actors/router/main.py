"""`v7 run router`."""

from __future__ import annotations

from actors.base.logs import configure_logging
from config.settings import Settings


def run(settings: Settings) -> int:
    from actors.router.actor import Router

    configure_logging("router", settings.log_level)
    actor = Router(settings)
    actor.install_signal_handlers()
    return actor.run()
