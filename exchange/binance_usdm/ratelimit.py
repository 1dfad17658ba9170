"""The venue's request limits as the venue reports them, and the gate every request passes.

Binance counts request weight per IP per minute and answers it in X-MBX-USED-WEIGHT-1M (new
orders per account in X-MBX-ORDER-COUNT-10S/-1M). Over the limit it answers 429 with
Retry-After; requests sent during that back-off escalate to a 418 IP ban (minutes to days).
So after a 429 or 418 nothing is sent until Retry-After (or the ban's end) has passed, and a
minute whose used weight has reached the limit is waited out before it is answered with 429.

Thread-safe: the request path and the stream thread share one limiter (one IP).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pydantic import Field

from exchange.adapter import ExchangeModel
from exchange.binance_usdm.errors import VenueFailure, throttle_error

DEFAULT_WEIGHT_LIMIT_1M = 2400
DEFAULT_RETRY_AFTER_429_S = 5.0
DEFAULT_RETRY_AFTER_418_S = 120.0
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")


class RateLimitStatus(ExchangeModel):
    """The limiter's state, for metrics and alerts (`banned`: new orders are refused)."""

    used_weight_1m: int = Field(ge=0)
    weight_limit_1m: int = Field(gt=0)
    order_count_10s: int | None = None
    order_count_1m: int | None = None
    throttled_until: datetime | None = None
    banned_until: datetime | None = None
    banned: bool = False
    rate_limited_total: int = 0
    bans_total: int = 0


def _header(headers: Mapping[str, str], name: str) -> int | None:
    for key, value in headers.items():
        if key.lower() == name:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


class RateLimiter:
    def __init__(self, weight_limit_1m: int = DEFAULT_WEIGHT_LIMIT_1M, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.weight_limit_1m = weight_limit_1m
        self.used_weight_1m = 0
        self._used_at = 0.0
        self.order_count_10s: int | None = None
        self.order_count_1m: int | None = None
        self.throttled_until = 0.0
        self.banned_until = 0.0
        self.rate_limited_total = 0
        self.bans_total = 0

    def set_weight_limit(self, limit: int) -> None:
        """The REQUEST_WEIGHT limit from exchangeInfo `rateLimits`."""
        if limit > 0:
            with self._lock:
                self.weight_limit_1m = limit

    def gate(self, *, placing: bool) -> None:
        """Raise (nothing is sent) while banned or backing off; wait out a minute whose weight is used up."""
        now = self._clock()
        with self._lock:
            if now < self.banned_until:
                raise throttle_error(VenueFailure(status=418, msg="not sent: the IP ban has not ended"),
                                     self.banned_until, placing=placing)
            if now < self.throttled_until:
                raise throttle_error(VenueFailure(status=429, msg="not sent: backing off after a rate limit"),
                                     self.throttled_until, placing=placing)
            same_minute = int(now // 60) == int(self._used_at // 60)
            if same_minute and self.used_weight_1m >= self.weight_limit_1m:
                until = (int(now // 60) + 1) * 60.0
                raise throttle_error(VenueFailure(status=429, msg="not sent: this minute's request weight is used up"),
                                     until, placing=placing)

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """Take the used weight and order counts from an answer's headers."""
        if not headers:
            return
        weight = _header(headers, "x-mbx-used-weight-1m")
        count_10s = _header(headers, "x-mbx-order-count-10s")
        count_1m = _header(headers, "x-mbx-order-count-1m")
        with self._lock:
            if weight is not None:
                self.used_weight_1m = weight
                self._used_at = self._clock()
            if count_10s is not None:
                self.order_count_10s = count_10s
            if count_1m is not None:
                self.order_count_1m = count_1m

    def refused(self, failure: VenueFailure) -> float:
        """Record a 429 or 418 answer; returns when requests may go again (epoch seconds)."""
        now = self._clock()
        with self._lock:
            if failure.banned:
                until = now + (failure.retry_after_s or DEFAULT_RETRY_AFTER_418_S)
                match = _BANNED_UNTIL.search(failure.msg)
                if match is not None:
                    until = max(until, int(match.group(1)) / 1000.0)
                self.banned_until = max(self.banned_until, until)
                self.bans_total += 1
                return self.banned_until
            until = now + (failure.retry_after_s or DEFAULT_RETRY_AFTER_429_S)
            self.throttled_until = max(self.throttled_until, until)
            self.rate_limited_total += 1
            return self.throttled_until

    @property
    def banned(self) -> bool:
        return self._clock() < self.banned_until

    def status(self) -> RateLimitStatus:
        now = self._clock()
        with self._lock:
            used = self.used_weight_1m if int(now // 60) == int(self._used_at // 60) else 0
            return RateLimitStatus(
                used_weight_1m=used, weight_limit_1m=self.weight_limit_1m,
                order_count_10s=self.order_count_10s, order_count_1m=self.order_count_1m,
                throttled_until=_dt(self.throttled_until) if now < self.throttled_until else None,
                banned_until=_dt(self.banned_until) if now < self.banned_until else None,
                banned=now < self.banned_until, rate_limited_total=self.rate_limited_total,
                bans_total=self.bans_total)


def _dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
