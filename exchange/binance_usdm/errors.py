"""What a failed Binance request means, decided by Binance's error code in the body.

ccxt picks its exception class by URL (its USDⓈ-M table applies only at Binance's own hosts),
so the same answer raises different classes at a proxy or a test server. `VenueFailure` is
read from the HTTP answer itself (status, body code and message, Retry-After) and `to_error`
maps it onto exchange/errors.py, whose classes say what the caller does next.

Binance code            -> our error
-1021 clock drift       -> (resync the offset, retry once) then ExchangeUnavailable("clock_drift")
-1003/-1015 429         -> OrderThrottled("overloaded") / VenueThrottled("rate_limited"), back off Retry-After
418 (IP ban)            -> OrderThrottled("ip_banned") / VenueThrottled("ip_banned"), nothing sent until it ends
5xx, -1000 -1001 -1006
-1007 -1008, no answer  -> outcome unknown: an order is looked up by client id first (orders.py);
                           otherwise ExchangeUnavailable("venue_unavailable")
-2011 -2013             -> OrderNotFound("unknown_order")
-2019                   -> OrderRejected("insufficient_margin")
-2022                   -> OrderRejected("reduce_only_rejected") (orders.py checks the position first)
-4164                   -> OrderRejected("min_notional")
-5022                   -> OrderRejected("post_only_would_cross")
-4061                   -> OrderRejected("position_side_mismatch") (hedge mode; check_account refuses it first)
-4116                   -> duplicate client id: the existing order is looked up and returned (orders.py)
others                  -> REJECT_CODES / BAD_REQUEST_CODES below; anything else OrderRejected/ExchangeError
                           "binance_<code>"
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from exchange.adapter import ExchangeModel
from exchange.errors import BadRequest, ExchangeError, ExchangeUnavailable, OrderNotFound, OrderRejected

CLOCK_DRIFT = -1021
LISTEN_KEY_GONE = -1125
DUPLICATE_CLIENT_ID = -4116
REDUCE_ONLY_REJECTED = -2022
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
NO_NEED_TO_CHANGE_POSITION_SIDE = -4059
ORDER_NOT_FOUND = frozenset({-2011, -2013})
RATE_LIMIT_CODES = frozenset({-1003, -1015})
# Binance: "the execution status is UNKNOWN and could have been a success" (5xx, -1006/-1007 timeouts);
# -1008 (system protection) and -1000/-1001 usually mean not executed, but only a lookup can say.
UNKNOWN_OUTCOME_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})

# Refusals of an order: nothing was placed; the code is what the router decides on.
REJECT_CODES: dict[int, str] = {
    -2019: "insufficient_margin",
    -2022: "reduce_only_rejected",
    -4164: "min_notional",
    -5022: "post_only_would_cross",
    -4061: "position_side_mismatch",
    -5021: "fok_not_filled",
    -4004: "qty_below_lot",
    -4005: "qty_above_max",
    -4001: "price_out_of_range",
    -4002: "price_out_of_range",
    -4013: "price_out_of_range",
    -4131: "price_out_of_range",  # PERCENT_PRICE: the book is too far from the mark for a MARKET order
    -2021: "would_trigger_immediately",
    -2027: "max_leverage_position",
    -2028: "insufficient_margin",
    -4400: "trading_restricted",  # the symbol accepts reduce-only orders only
}

# The request itself is wrong (or the key is): retrying it unchanged is pointless.
BAD_REQUEST_CODES: dict[int, str] = {
    -1121: "unknown_symbol",
    -1111: "bad_precision",
    -4014: "bad_precision",
    -4023: "bad_precision",
    -4015: "invalid_client_order_id",
    -4120: "order_type_not_supported",
    -4028: "invalid_leverage",
    -1022: "auth_failed",
    -2014: "auth_failed",
    -2015: "permission_denied",  # invalid key, IP not allowed, or no futures permission
    -1100: "bad_parameter",
    -1102: "bad_parameter",
    -1106: "bad_parameter",
    -1115: "bad_parameter",
    -1116: "bad_parameter",
    -1117: "bad_parameter",
    -1128: "bad_parameter",
    -1130: "bad_parameter",
    -1136: "bad_parameter",
    -4003: "bad_parameter",
    -4060: "bad_parameter",
}


@dataclass(frozen=True, slots=True)
class VenueFailure:
    """What one failed request told us. `status` None: no HTTP answer at all (timeout, connection lost)."""

    status: int | None
    code: int | None = None
    msg: str = ""
    retry_after_s: float | None = None
    timed_out: bool = False

    @property
    def outcome_unknown(self) -> bool:
        """The request may or may not have been executed."""
        return self.status is None or self.status >= 500 or self.code in UNKNOWN_OUTCOME_CODES

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 or (self.code in RATE_LIMIT_CODES and self.status != 418)

    @property
    def banned(self) -> bool:
        return self.status == 418

    def describe(self) -> str:
        if self.status is None:
            return "no answer (timed out)" if self.timed_out else "no answer (connection lost)"
        if self.code is None:
            return f"HTTP {self.status}"
        return f"HTTP {self.status} Binance {self.code}: {self.msg}"


class VenueThrottled(ExchangeUnavailable):
    """The venue refuses requests for a while: HTTP 429 (rate limit, code "rate_limited") or 418
    (IP ban, code "ip_banned"). Nothing was done. No request is sent before `retry_at` (epoch
    seconds): sending during a ban lengthens it. The gateway alerts while banned."""

    def __init__(self, code: str, detail: str, retry_at: float) -> None:
        super().__init__(code, detail)
        self.retry_at = retry_at


class OrderThrottled(OrderRejected):
    """A new order refused by a rate limit ("overloaded": retry after `retry_at`) or an IP ban
    ("ip_banned": no new orders until `retry_at`). Nothing was placed."""

    def __init__(self, code: str, detail: str, retry_at: float) -> None:
        super().__init__(code, detail)
        self.retry_at = retry_at


class AccountProblem(ExchangeModel):
    """One thing about the account or key that must be fixed before trading; `fix` says how."""

    check: str
    symbol: str | None = None
    detail: str
    fix: str


class AccountNotReady(BadRequest):
    """The start-up check found problems (`problems`, each naming what to fix). Trading must not
    start: fix the account or the configuration and start again."""

    def __init__(self, problems: list[AccountProblem]) -> None:
        lines = "; ".join(f"{p.check}{' ' + p.symbol if p.symbol else ''}: {p.detail} -> {p.fix}" for p in problems)
        super().__init__("account_not_ready", lines)
        self.problems = problems


def throttle_error(failure: VenueFailure, retry_at: float, *, placing: bool) -> ExchangeError:
    wait = max(0.0, retry_at - time.time())
    if failure.banned:
        detail = f"IP banned by the venue for {wait:.0f}s more ({failure.describe()})"
        return OrderThrottled("ip_banned", detail, retry_at) if placing else VenueThrottled("ip_banned", detail,
                                                                                            retry_at)
    detail = f"rate limited, retry in {wait:.1f}s ({failure.describe()})"
    return OrderThrottled("overloaded", detail, retry_at) if placing else VenueThrottled("rate_limited", detail,
                                                                                         retry_at)


def to_error(failure: VenueFailure, *, placing: bool = False) -> ExchangeError:
    """Our error for a failed request (rate limits and bans are `throttle_error`'s)."""
    detail = failure.describe()
    code = failure.code
    if code in ORDER_NOT_FOUND:
        return OrderNotFound("unknown_order", detail)
    if code is not None and code in REJECT_CODES:
        return OrderRejected(REJECT_CODES[code], detail)
    if code is not None and code in BAD_REQUEST_CODES:
        return BadRequest(BAD_REQUEST_CODES[code], detail)
    if code == CLOCK_DRIFT:
        return ExchangeUnavailable("clock_drift", detail + " (after re-measuring the server time offset)")
    if failure.outcome_unknown:
        return ExchangeUnavailable("venue_unavailable", detail)
    name = f"binance_{abs(code)}" if code is not None else f"http_{failure.status}"
    return OrderRejected(name, detail) if placing else ExchangeError(name, detail)
