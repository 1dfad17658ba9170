"""The exchange adapter on Binance USDⓈ-M futures (testnet, demo, mainnet), streams included.

- `adapter`: `BinanceUsdmAdapter`, the `ExchangeAdapter` implementation, and `StreamStatus`;
- `config`: `BinanceSettings` (network, URL overrides, timings) and the networks' URLs;
- `credentials`: `ApiCredentials` (env vars or a 0600 key file) and log redaction;
- `errors`: Binance code -> exchange/errors.py mapping, throttle errors, `AccountNotReady`;
- `checks`: the start-up check (`check_account`); `filters`: tick/lot/notional rules;
- `rest`, `ratelimit`, `orders`, `history`, `market_data`, `payloads`: the request half;
- `stream_thread`, `market_stream`, `user_stream`, `user_events`, `account_state`, `ws`,
  `memory`: the push half.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use: the adapter pulls in ccxt (~55 MiB of RSS), which a SIM group's
# gateway and every other program never need.
_HOME = {
    "BinanceUsdmAdapter": "adapter", "StreamStatus": "adapter", "AccountReport": "checks",
    "NETWORKS": "config", "BinanceSettings": "config", "Network": "config",
    "ApiCredentials": "credentials", "CredentialsError": "credentials",
    "AccountNotReady": "errors", "AccountProblem": "errors", "OrderThrottled": "errors",
    "VenueThrottled": "errors", "RateLimitStatus": "ratelimit",
}

if TYPE_CHECKING:
    from exchange.binance_usdm.adapter import BinanceUsdmAdapter, StreamStatus
    from exchange.binance_usdm.checks import AccountReport
    from exchange.binance_usdm.config import NETWORKS, BinanceSettings, Network
    from exchange.binance_usdm.credentials import ApiCredentials, CredentialsError
    from exchange.binance_usdm.errors import AccountNotReady, AccountProblem, OrderThrottled, VenueThrottled
    from exchange.binance_usdm.ratelimit import RateLimitStatus


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "NETWORKS",
    "AccountNotReady",
    "AccountProblem",
    "AccountReport",
    "ApiCredentials",
    "BinanceSettings",
    "BinanceUsdmAdapter",
    "CredentialsError",
    "Network",
    "OrderThrottled",
    "RateLimitStatus",
    "StreamStatus",
    "VenueThrottled",
]
