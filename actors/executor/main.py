"""`v7 run executor`."""

from __future__ import annotations

from actors.base.logs import configure_logging
from config.settings import Settings


def run(settings: Settings) -> int:
    from actors.executor.actor import Executor

    configure_logging("executor", settings.log_level)
    actor = Executor(settings)  # a bad config raises ConfigError naming the key; `v7 run` prints it
    actor.install_signal_handlers()
    return actor.run()
