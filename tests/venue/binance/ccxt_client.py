"""Pointing ccxt's `binanceusdm` at the fake: the url keys to override and the options to set."""

from __future__ import annotations

from typing import Any

# ccxt's `urls["api"]` keys a USDⓈ-M client uses, and the path under the server for each.
CCXT_API_PATHS: dict[str, str] = {
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "sapi": "/sapi/v1",
}

# fetchCurrencies: False keeps load_markets() off the spot wallet endpoint (sapi capital/config/getall);
# binanceusdm's own default fetchMarkets types (["linear"]) keep it off spot/inverse exchangeInfo.
CCXT_OPTIONS: dict[str, Any] = {"fetchCurrencies": False}


def ccxt_urls(rest_url: str) -> dict[str, str]:
    """A complete replacement for `exchange.urls["api"]`: only the fake's URLs remain, so a call to any
    other API section (spot "public"/"private", "dapi", "papi", ...) fails inside ccxt with NotSupported
    ("does not have a testnet/sandbox URL for ... endpoints") instead of reaching a real Binance host."""
    base = rest_url.rstrip("/")
    return {name: base + path for name, path in CCXT_API_PATHS.items()}


def make_binanceusdm(rest_url: str, api_key: str = "", secret: str = "", **config: Any) -> Any:
    """A sync ccxt binanceusdm client talking only to the fake at `rest_url`."""
    import ccxt

    options = {**CCXT_OPTIONS, **config.pop("options", {})}
    exchange = ccxt.binanceusdm({"apiKey": api_key, "secret": secret, "options": options, **config})
    exchange.urls["api"] = ccxt_urls(rest_url)
    return exchange
