"""Settings of the Binance USDⓈ-M adapter and where each network lives.

The caller (the gateway) builds `BinanceSettings` from runtime.toml `[exchange]`; the keys
travel separately (`credentials.ApiCredentials`) so that settings can be logged and dumped
freely. `rest_url` / `ws_url` replace the network's hosts (a local Binance-compatible server,
a proxy): the adapter appends Binance's own paths (/fapi/v1/..., /ws/<listenKey>, /stream).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Network = Literal["testnet", "demo", "mainnet"]
MarginType = Literal["CROSSED", "ISOLATED"]
KlineInterval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]


class Endpoints(BaseModel):
    """Base URLs of one venue: REST (fapi paths are appended), websockets, and the wallet API
    (`sapi`, for the key's permissions) where the network has one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rest: str
    ws: str
    sapi: str | None


# ccxt's own URL tables (binanceusdm "api", "test", "demo") and Binance's fstream hosts. Testnet
# and demo have no wallet API: there the key's futures permission is probed with a signed read.
NETWORKS: dict[Network, Endpoints] = {
    "mainnet": Endpoints(rest="https://fapi.binance.com", ws="wss://fstream.binance.com",
                         sapi="https://api.binance.com/sapi/v1"),
    "testnet": Endpoints(rest="https://testnet.binancefuture.com", ws="wss://fstream.binancefuture.com", sapi=None),
    "demo": Endpoints(rest="https://demo-fapi.binance.com", ws="wss://demo-fstream.binance.com", sapi=None),
}


class BinanceSettings(BaseModel):
    """Everything the adapter is told except the keys. Times in seconds unless the name says ms."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    network: Network = "testnet"
    rest_url: str | None = Field(default=None, description="Replaces the network's REST host (http[s]://host:port).")
    ws_url: str | None = Field(default=None, description="Replaces the network's websocket host (ws[s]://host:port).")
    bar_interval: KlineInterval = "1m"

    # REST.
    timeout_s: float = Field(default=10.0, gt=0.0, le=60.0, description="One HTTP request gives up after this.")
    recv_window_ms: int = Field(
        default=5000, ge=500, le=60_000,
        description="Signed requests are valid this long after their timestamp. It also bounds how long an "
                    "unanswered order can still land: after it, a lookup that finds nothing is final.")
    ccxt_throttle: bool = Field(
        default=False,
        description="ccxt's client-side pacing (it sleeps cost x 50 ms after each request: an order placed right "
                    "after a read waits up to 200 ms). Off by default: the venue's own counters, read from every "
                    "answer's headers, gate requests (ratelimit.py).")
    lookup_attempts: int = Field(default=4, ge=1, le=20,
                                 description="Lookups of an order whose placing got no clear answer.")
    lookup_backoff_s: float = Field(default=0.25, gt=0.0, le=10.0)
    verify_new_ids: bool = Field(
        default=True,
        description="Look a client order id up before its first placing by this process, so an id that "
                    "already exists on the venue (placed before a restart) is returned, never placed twice. "
                    "Costs one request (weight 1) per order.")
    require_account_check: bool = Field(
        default=True, description="place_order refuses until check_account() has passed (one-way mode, "
                                  "margin type, leverage, filters, permissions).")
    fills_settle_attempts: int = Field(
        default=4, ge=1, le=20, description="Reads of an order's trades until they add up to its executed qty.")

    # Streams.
    book_min_interval_s: float = Field(
        default=0.1, ge=0.0, le=10.0,
        description="At most one BookTicked per symbol per interval (the newest top always goes out).")
    market_silence_s: float = Field(default=10.0, gt=0.0, le=600.0,
                                    description="A market stream silent this long is reconnected.")
    user_silence_s: float = Field(
        default=60.0, gt=0.0, le=3600.0,
        description="A user-data stream silent this long is reconnected and resynced over REST (an idle account "
                    "is silent too; the resync costs a few reads).")
    keepalive_s: float = Field(default=1800.0, gt=0.0, le=3300.0,
                               description="listenKey keepalive period (Binance: valid 60 min).")
    reconnect_min_s: float = Field(default=0.5, gt=0.0, le=60.0)
    reconnect_max_s: float = Field(default=30.0, gt=0.0, le=600.0)
    ws_ping_interval_s: float = Field(default=20.0, gt=0.0, le=300.0)
    ws_open_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    first_recovery_lookback_s: float = Field(
        default=60.0, ge=0.0, le=86_400.0,
        description="The first user-stream sync also pushes fills this far before attach() (consumers de-duplicate "
                    "by trade id), so a fill between a consumer's snapshot and attach is not missed.")
    account_event_hold_s: float = Field(
        default=0.5, ge=0.0, le=5.0,
        description="An ACCOUNT_UPDATE that overtakes its fill's ORDER_TRADE_UPDATE is held this long at most, "
                    "so positions follow the trade as in the paper engine.")

    @model_validator(mode="after")
    def _urls(self) -> BinanceSettings:
        for name, url, schemes in (("rest_url", self.rest_url, ("http://", "https://")),
                                   ("ws_url", self.ws_url, ("ws://", "wss://"))):
            if url is not None and not url.startswith(schemes):
                raise ValueError(f"{name} must start with {' or '.join(schemes)}")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    def endpoints(self) -> Endpoints:
        """The URLs in use: the network's, with `rest_url` / `ws_url` replacing its hosts. A replaced
        REST host serves the wallet API too (a Binance-compatible server or proxy does)."""
        base = NETWORKS[self.network]
        if self.rest_url is None and self.ws_url is None:
            return base
        rest = self.rest_url.rstrip("/") if self.rest_url else base.rest
        return Endpoints(rest=rest, ws=self.ws_url.rstrip("/") if self.ws_url else base.ws,
                         sapi=f"{rest}/sapi/v1" if self.rest_url else base.sapi)
