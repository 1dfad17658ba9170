"""`v7 run paper_exchange`."""

from __future__ import annotations

import sys

from actors.base.logs import configure_logging
from config.settings import Settings
from exchange.paper.store import StoreError


def run(settings: Settings) -> int:
    from actors.paper_exchange.actor import PaperExchangeActor

    configure_logging("paper_exchange", settings.log_level)
    try:
        actor = PaperExchangeActor(settings)
    except StoreError as exc:
        print(f"v7 paper_exchange: {exc}", file=sys.stderr)
        return 3
    actor.install_signal_handlers()
    return actor.run()
