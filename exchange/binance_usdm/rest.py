"""REST through ccxt's `binanceusdm`, by Binance's own endpoints and payloads.

ccxt does the signing (HMAC, timestamp, recvWindow), the URLs and its client-side throttle; we
call its implicit endpoint methods (`fapiPrivatePostOrder` ...) and read Binance's JSON
ourselves, so nothing depends on ccxt's unified parsing. Every answer is read by status, body
code and headers (`VenueFailure`), never by ccxt's exception class.

One `BinanceRest` wraps one ccxt client (one HTTP session) behind a lock: the request path and
the stream thread each have their own, sharing the rate limiter and the server clock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import ccxt

from exchange.binance_usdm.config import BinanceSettings, Endpoints
from exchange.binance_usdm.credentials import ApiCredentials, quiet_logger, redact, register_secrets
from exchange.binance_usdm.errors import CLOCK_DRIFT, VenueFailure, throttle_error, to_error
from exchange.binance_usdm.ratelimit import RateLimiter
from exchange.errors import ExchangeError

log = logging.getLogger(__name__)
HTTP_LOGGER = "exchange.binance_usdm.http"

# ccxt's `urls["api"]` sections a USDⓈ-M client uses, and their paths under the REST host. With
# only these present, a call to any other section fails inside ccxt instead of reaching a host.
_FAPI_SECTIONS = {
    "fapiPublic": "/fapi/v1", "fapiPublicV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1", "fapiPrivateV2": "/fapi/v2", "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
}


class RequestFailed(Exception):
    """Internal: a request answered with an error (or not at all). Callers decide what it means."""

    def __init__(self, failure: VenueFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


class ServerClock:
    """The venue's clock as offset from ours: signed requests carry local time + offset."""

    def __init__(self) -> None:
        self.offset_ms = 0.0
        self.round_trip_ms: float | None = None
        self.measured_at: float | None = None

    def now_ms(self) -> int:
        return int(time.time() * 1000 + self.offset_ms)


class _Client(ccxt.binanceusdm):  # type: ignore[misc]
    """binanceusdm that keeps each answer's status, headers and raw body (ccxt keeps only some)."""

    last_status: int | None = None
    last_headers: Any = None
    last_body: str | None = None

    def on_rest_response(self, code: Any, reason: Any, url: Any, method: Any, response_headers: Any,
                         response_body: Any, request_headers: Any, request_body: Any) -> Any:
        self.last_status = int(code) if code is not None else None
        self.last_headers = response_headers
        self.last_body = response_body
        return response_body


class BinanceRest:
    def __init__(self, endpoints: Endpoints, credentials: ApiCredentials | None, settings: BinanceSettings,
                 limiter: RateLimiter, clock: ServerClock) -> None:
        api_key, secret = "", ""
        if credentials is not None:  # None: public market data only
            register_secrets(credentials)
            api_key, secret = credentials.secrets()
        self.settings = settings
        self.limiter = limiter
        self.clock = clock
        self._lock = threading.Lock()
        self._client = _Client({
            "apiKey": api_key,
            "secret": secret,
            "enableRateLimit": settings.ccxt_throttle,
            "timeout": int(settings.timeout_s * 1000),
            # fetchCurrencies off: nothing may call the spot wallet; the time offset is ours (ServerClock).
            "options": {"fetchCurrencies": False, "recvWindow": settings.recv_window_ms,
                        "adjustForTimeDifference": False},
        })
        urls = {name: endpoints.rest + path for name, path in _FAPI_SECTIONS.items()}
        if endpoints.sapi is not None:
            urls["sapi"] = endpoints.sapi
        self._client.urls["api"] = urls
        self._client.logger = quiet_logger(HTTP_LOGGER)
        self.has_sapi = endpoints.sapi is not None

    def __repr__(self) -> str:
        return f"BinanceRest({self._client.urls['api']['fapiPublic']})"

    # --- requests -------------------------------------------------------------------------------

    def request(self, endpoint: str, params: dict[str, Any] | None = None, *, placing: bool = False) -> Any:
        """Binance's JSON answer; any failure raised as our error (exchange/errors.py)."""
        try:
            return self.send(endpoint, params, placing=placing)
        except RequestFailed as exc:
            raise to_error(exc.failure, placing=placing) from None

    def send(self, endpoint: str, params: dict[str, Any] | None = None, *, placing: bool = False) -> Any:
        """Binance's JSON answer. A 429/418 raises our throttle error (nothing was done); -1021
        re-measures the clock offset and retries once; any other failure is `RequestFailed`."""
        for attempt in range(2):
            self.limiter.gate(placing=placing)
            result, failure = self._once(endpoint, params)
            if failure is None:
                return result
            if failure.rate_limited or failure.banned:
                retry_at = self.limiter.refused(failure)
                log.warning("%s refused by the venue's rate limit: %s", endpoint, failure.describe())
                raise throttle_error(failure, retry_at, placing=placing)
            if failure.code == CLOCK_DRIFT and attempt == 0:
                before = self.clock.offset_ms
                self.sync_time()
                log.warning("%s: -1021 clock drift; server time offset re-measured %.0f ms -> %.0f ms, retrying once",
                            endpoint, before, self.clock.offset_ms)
                continue
            raise RequestFailed(failure)
        raise AssertionError("unreachable")

    def sync_time(self) -> float:
        """Measure the venue's clock offset (midpoint of one GET /fapi/v1/time); returns it in ms."""
        self.limiter.gate(placing=False)
        started = time.time()
        body, failure = self._once("fapiPublicGetTime", None)
        finished = time.time()
        if failure is not None:
            if failure.rate_limited or failure.banned:
                raise throttle_error(failure, self.limiter.refused(failure), placing=False)
            raise to_error(failure)
        server_ms = float(body["serverTime"])
        self.clock.offset_ms = server_ms - (started + finished) / 2 * 1000
        self.clock.round_trip_ms = (finished - started) * 1000
        self.clock.measured_at = finished
        return self.clock.offset_ms

    def _once(self, endpoint: str, params: dict[str, Any] | None) -> tuple[Any, VenueFailure | None]:
        client = self._client
        with self._lock:
            client.options["timeDifference"] = round(-self.clock.offset_ms)  # nonce = local - difference
            client.last_status, client.last_headers, client.last_body = None, None, None
            try:
                result = getattr(client, endpoint)(dict(params or {}))
            except ccxt.NetworkError as exc:
                # Timeouts, lost connections and 5xx without a Binance body all land here.
                self.limiter.observe(client.last_headers)
                return None, self._failure(exc)
            except ccxt.BaseError as exc:
                self.limiter.observe(client.last_headers)
                if client.last_status is None:
                    # Refused inside ccxt before anything was sent (a missing credential, an
                    # unsupported section): a programming or configuration error.
                    raise ExchangeError("client_error", f"{type(exc).__name__}: {self._clean(str(exc))}") from None
                return None, self._failure(exc)
            self.limiter.observe(client.last_headers)
            return result, None

    def _failure(self, exc: Exception) -> VenueFailure:
        client = self._client
        status = client.last_status
        if status is None:
            return VenueFailure(status=None, timed_out=isinstance(exc, ccxt.RequestTimeout))
        code: int | None = None
        msg = ""
        try:
            body = json.loads(client.last_body) if client.last_body else None
        except ValueError:
            body = None
        if isinstance(body, dict):
            raw = body.get("code")
            code = raw if isinstance(raw, int) else None
            msg = self._clean(str(body.get("msg", "")))
        elif client.last_body:
            msg = self._clean(client.last_body.strip()[:200])
        retry_after: float | None = None
        for key, value in (client.last_headers or {}).items():
            if key.lower() == "retry-after":
                try:
                    retry_after = float(value)
                except (TypeError, ValueError):
                    retry_after = None
        return VenueFailure(status=status, code=code, msg=msg, retry_after_s=retry_after)

    def _clean(self, text: str) -> str:
        return redact(text, (self._client.apiKey, self._client.secret))
