"""Request weight per IP per minute and order counts per account (fixed windows, as Binance counts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .config import VenueConfig
from .errors import BinanceError, error

WeightRule = int | Callable[[dict[str, str]], int]


def _by_symbol(with_symbol: int, without: int) -> WeightRule:
    return lambda params: with_symbol if params.get("symbol") else without


def _by_limit(table: list[tuple[int, int]], default_limit: int) -> WeightRule:
    def weight(params: dict[str, str]) -> int:
        raw = params.get("limit", "")
        limit = int(raw) if raw.isdigit() else default_limit
        for upper, cost in table:
            if limit <= upper:
                return cost
        return table[-1][1]

    return weight


# Binance's documented weights (developers.binance.com, USDⓈ-M futures); unknown routes weigh 1.
WEIGHTS: dict[tuple[str, str], WeightRule] = {
    ("GET", "/fapi/v1/ping"): 1,
    ("GET", "/fapi/v1/time"): 1,
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/depth"): _by_limit([(50, 2), (100, 5), (500, 10), (1000, 20)], 500),
    ("GET", "/fapi/v1/klines"): _by_limit([(99, 1), (499, 2), (1000, 5), (1500, 10)], 500),
    ("GET", "/fapi/v1/premiumIndex"): _by_symbol(1, 10),
    ("GET", "/fapi/v1/ticker/24hr"): _by_symbol(1, 40),
    ("GET", "/fapi/v1/ticker/price"): _by_symbol(1, 2),
    ("GET", "/fapi/v2/ticker/price"): _by_symbol(1, 2),
    ("GET", "/fapi/v1/ticker/bookTicker"): _by_symbol(2, 5),
    ("POST", "/fapi/v1/order"): 0,
    ("GET", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/allOpenOrders"): 1,
    ("GET", "/fapi/v1/openOrders"): _by_symbol(1, 40),
    ("GET", "/fapi/v1/allOrders"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v2/balance"): 5,
    ("GET", "/fapi/v3/balance"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("POST", "/fapi/v1/positionSide/dual"): 1,
    ("POST", "/fapi/v1/leverage"): 1,
    ("POST", "/fapi/v1/marginType"): 1,
    ("GET", "/fapi/v1/leverageBracket"): 1,
    ("GET", "/fapi/v1/commissionRate"): 20,
    ("GET", "/fapi/v1/accountConfig"): 5,
    ("GET", "/fapi/v1/symbolConfig"): 5,
    ("POST", "/fapi/v1/listenKey"): 1,
    ("PUT", "/fapi/v1/listenKey"): 1,
    ("DELETE", "/fapi/v1/listenKey"): 1,
    ("GET", "/sapi/v1/account/apiRestrictions"): 1,
}

ORDER_ROUTES = frozenset({("POST", "/fapi/v1/order")})


def weight_of(method: str, path: str, params: dict[str, str]) -> int:
    rule = WEIGHTS.get((method, path), 1)
    return rule(params) if callable(rule) else rule


@dataclass
class _Window:
    start: int = -1
    count: int = 0

    def add(self, now_ms: int, length_ms: int, amount: int) -> int:
        start = now_ms - now_ms % length_ms
        if start != self.start:
            self.start, self.count = start, 0
        self.count += amount
        return self.count

    def current(self, now_ms: int, length_ms: int) -> int:
        return self.count if now_ms - now_ms % length_ms == self.start else 0

    def retry_after_s(self, now_ms: int, length_ms: int) -> int:
        start = now_ms - now_ms % length_ms
        return max(1, -(-(start + length_ms - now_ms) // 1000))


@dataclass
class RateLimiter:
    config: VenueConfig
    weights: dict[str, _Window] = field(default_factory=dict)
    orders_1m: dict[str, _Window] = field(default_factory=dict)
    orders_10s: dict[str, _Window] = field(default_factory=dict)
    refusals: dict[str, _Window] = field(default_factory=dict)
    banned_until_ms: dict[str, int] = field(default_factory=dict)

    def check_ban(self, ip: str, now_ms: int) -> None:
        until = self.banned_until_ms.get(ip, 0)
        if now_ms < until:
            raise self.ban_error(ip, until, now_ms)

    @staticmethod
    def ban_error(ip: str, until_ms: int, now_ms: int) -> BinanceError:
        return BinanceError(
            -1003,
            f"Way too many requests; IP({ip}) banned until {until_ms}. "
            "Please use the websocket for live updates to avoid bans.",
            418,
            {"Retry-After": str(max(1, -(-(until_ms - now_ms) // 1000)))},
        )

    def add_weight(self, ip: str, weight: int, now_ms: int) -> int:
        """Count `weight`; 429 over the limit, and a ban after repeated 429s in one minute."""
        window = self.weights.setdefault(ip, _Window())
        used = window.add(now_ms, 60_000, weight)
        if used > self.config.weight_limit_1m:
            refused = self.refusals.setdefault(ip, _Window()).add(now_ms, 60_000, 1)
            if refused > self.config.bans_after_429s:
                until = now_ms + int(self.config.ban_seconds * 1000)
                self.banned_until_ms[ip] = until
                raise self.ban_error(ip, until, now_ms)
            raise BinanceError(
                -1003,
                f"Too many requests; current limit of IP({ip}) is {self.config.weight_limit_1m} requests per minute. "
                "Please use the websocket for live updates to avoid polling the API.",
                429,
                {"Retry-After": str(window.retry_after_s(now_ms, 60_000))},
            )
        return used

    def used_weight(self, ip: str, now_ms: int) -> int:
        window = self.weights.get(ip)
        return window.current(now_ms, 60_000) if window else 0

    def add_order(self, account_id: str, now_ms: int) -> tuple[int, int]:
        """Count one new order; -1015 (429) over either order limit. Returns (count 10s, count 1m)."""
        per_10s = self.orders_10s.setdefault(account_id, _Window())
        per_1m = self.orders_1m.setdefault(account_id, _Window())
        count_10s = per_10s.add(now_ms, 10_000, 1)
        count_1m = per_1m.add(now_ms, 60_000, 1)
        if count_10s > self.config.order_limit_10s:
            raise error(-1015, self.config.order_limit_10s, "10 SECOND",
                        headers={"Retry-After": str(per_10s.retry_after_s(now_ms, 10_000))})
        if count_1m > self.config.order_limit_1m:
            raise error(-1015, self.config.order_limit_1m, "MINUTE",
                        headers={"Retry-After": str(per_1m.retry_after_s(now_ms, 60_000))})
        return count_10s, count_1m

    def order_counts(self, account_id: str, now_ms: int) -> tuple[int, int]:
        per_10s = self.orders_10s.get(account_id)
        per_1m = self.orders_1m.get(account_id)
        return (per_10s.current(now_ms, 10_000) if per_10s else 0, per_1m.current(now_ms, 60_000) if per_1m else 0)
