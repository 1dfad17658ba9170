"""`v7 run sync`."""

from __future__ import annotations

from actors.base.logs import configure_logging
from config.settings import Settings


def run(settings: Settings) -> int:
    from actors.sync.actor import Sync

    configure_logging("sync", settings.log_level)
    actor = Sync(settings)
    actor.install_signal_handlers()
    return actor.run()
