"""`v7 run exchange`: the exchange gateway of the configured mode.

Exit codes: 2 the venue or its account is not ready to trade (the message names what to
fix: keys, hedge mode, permissions, ...), 3 the paper exchange's database is unusable.
"""

from __future__ import annotations

import sys

from actors.base.logs import configure_logging
from config.settings import Settings
from exchange.binance_usdm.credentials import CredentialsError
from exchange.errors import ExchangeError
from exchange.paper.store import StoreError


def run(settings: Settings) -> int:
    from actors.exchange.actor import ExchangeGateway

    configure_logging("exchange", settings.log_level)
    try:
        actor = ExchangeGateway(settings)
    except StoreError as exc:
        print(f"v7 exchange: {exc}", file=sys.stderr)
        return 3
    except CredentialsError as exc:
        print(f"v7 exchange: API keys: {exc}", file=sys.stderr)
        return 2
    except ExchangeError as exc:  # AccountNotReady names each problem and its fix
        print(f"v7 exchange: {settings.mode} on {settings.exchange.network} cannot start: {exc}", file=sys.stderr)
        return 2
    actor.install_signal_handlers()
    return actor.run()
