"""What the gateway hosts in each mode, built from the settings.

- SIM: the paper engine on its own simulated market (`var/paper_exchange/exchange.db`).
- DRY_RUN: the paper engine on the venue's market (its book, marks, bars and exchange
  filters); orders are filled by the paper engine and never sent (`var/dry_run/exchange.db`).
  The venue adapter runs without keys: market data only.
- LIVE: the venue adapter itself, with the keys (environment or key file); its start-up
  check (one-way mode, margin type and leverage, filters, the key's futures permission,
  server time) must pass before the gateway serves anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.settings import Settings
from exchange.adapter import ExchangeAdapter
from exchange.binance_usdm.config import BinanceSettings
from exchange.binance_usdm.credentials import ApiCredentials
from exchange.paper.engine import PaperExchange
from exchange.paper.store import PaperStore
from exchange.paper.venue_market import VenueMarket

if TYPE_CHECKING:  # the adapter (and ccxt with it) is imported only by a gateway that uses it
    from exchange.binance_usdm.adapter import BinanceUsdmAdapter

log = logging.getLogger(__name__)

HISTORY_BARS = 300  # bars of history the DRY_RUN market starts with (the strategy needs context)


@dataclass
class Hosted:
    """The adapter the gateway serves, and the venue behind it (None in SIM)."""

    adapter: ExchangeAdapter
    venue: BinanceUsdmAdapter | None = None
    engine: PaperExchange | None = None  # the paper engine (SIM, DRY_RUN): its clock is the gateway's timer
    market: VenueMarket | None = None  # DRY_RUN: fed by the venue's market stream


def venue_settings(settings: Settings) -> BinanceSettings:
    ex = settings.exchange
    return BinanceSettings(network=ex.network, rest_url=ex.rest_url, ws_url=ex.ws_url, bar_interval=ex.bar_interval)


def credentials(settings: Settings) -> ApiCredentials:
    """The keys: a key file when configured, else the environment. Never logged."""
    key_file = settings.exchange.key_file
    return ApiCredentials.from_key_file(key_file) if key_file is not None else ApiCredentials.from_env()


def host(settings: Settings) -> Hosted:
    if settings.mode == "SIM":
        engine = PaperExchange(settings.paper, settings.symbols,
                               PaperStore(settings.var_path / "paper_exchange" / "exchange.db"))
        return Hosted(engine, engine=engine)
    from exchange.binance_usdm.adapter import BinanceUsdmAdapter

    if settings.mode == "DRY_RUN":
        venue = BinanceUsdmAdapter(venue_settings(settings), settings.symbols, credentials=None)
        instruments = venue.instruments()
        history = {s: venue.fetch_bars(s, HISTORY_BARS) for s in settings.symbols}
        market = VenueMarket(settings.symbols, history)
        engine = PaperExchange(settings.paper, settings.symbols,
                               PaperStore(settings.var_path / "dry_run" / "exchange.db"), market=market,
                               instruments={s: instruments[s] for s in settings.symbols if s in instruments})
        log.info("DRY_RUN: %s market data from %s, orders filled by the paper engine", settings.exchange.network,
                 settings.exchange.rest_url or "the venue")
        return Hosted(engine, venue=venue, engine=engine, market=market)
    venue = BinanceUsdmAdapter(venue_settings(settings), settings.symbols, credentials=credentials(settings))
    report = venue.check_account(settings.symbols, leverage=settings.exchange.leverage,
                                 margin_type=settings.exchange.margin_type)
    log.info("LIVE on %s: account checked (server time offset %.0f ms; %s)", settings.exchange.network,
             report.time_offset_ms, ", ".join(report.changed) or "nothing to change")
    return Hosted(venue, venue=venue)
