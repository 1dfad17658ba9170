"""`v7 run exchange`."""

from __future__ import annotations

import sys

from actors.base.logs import configure_logging
from config.settings import Settings
from exchange.paper.store import StoreError


def run(settings: Settings) -> int:
    from actors.exchange.actor import ExchangeGateway

    configure_logging("exchange", settings.log_level)
    try:
        actor = ExchangeGateway(settings)
    except StoreError as exc:
        print(f"v7 exchange: {exc}", file=sys.stderr)
        return 3
    actor.install_signal_handlers()
    return actor.run()
