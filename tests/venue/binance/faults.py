"""The fault switch: venue failures armed for the next N requests/events, for T seconds, or until cleared.

A fault matches a request or an event by its optional filters (api_key, symbol, side, path,
method, scope); `take` consumes one count of the first matching fault, `peek` looks without
consuming (for faults that are states rather than events, like clock drift).
"""

from __future__ import annotations

import itertools
import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class FaultKind(StrEnum):
    # Request level (checked before the request is processed; the request has no effect).
    RATE_LIMIT = "rate_limit"  # 429 + Retry-After, -1003
    IP_BAN = "ip_ban"  # 418 + Retry-After, -1003 "Way too many requests; IP(...) banned until ..."
    HTTP_ERROR = "http_error"  # any status/code/msg, e.g. 503 "Service Unavailable." (not executed);
    # format "text" answers msg as a plain-text body (a proxy's error page rather than Binance JSON)
    # Unknown outcome: the request IS executed, then its response is lost or replaced.
    ORDER_UNKNOWN = "order_unknown"  # mode: disconnect | timeout | error (status/code/msg)
    # Orders.
    REJECT = "reject"  # the next orders are rejected with `code` (-2022, -4164, -5022, -4061, -2019, ...)
    PARTIAL_FILLS = "partial_fills"  # the next orders fill in `chunks` trades `delay_s` apart
    # Keys and time.
    NO_FUTURES_PERMISSION = "no_futures_permission"  # key acts as without futures permission (-2015)
    CLOCK_DRIFT = "clock_drift"  # the venue clock runs `offset_ms` off (client timestamps -> -1021)
    # User-data stream.
    KEEPALIVE_FAIL = "keepalive_fail"  # PUT listenKey -> -1125; `expire` (default true) also ends the key
    USER_STREAM_SILENT = "user_stream_silent"  # user events dropped, connections stay open
    # Websockets.
    WS_REFUSE = "ws_refuse"  # new websocket handshakes refused (HTTP 503); scope: user | market | all


# Default parameters per kind (merged under the caller's).
DEFAULTS: dict[FaultKind, dict[str, Any]] = {
    FaultKind.RATE_LIMIT: {"retry_after": 1},
    FaultKind.IP_BAN: {"retry_after": 120},
    FaultKind.HTTP_ERROR: {"status": 503, "code": -1001, "msg": "Service Unavailable.", "format": "json"},
    FaultKind.ORDER_UNKNOWN: {
        "mode": "disconnect",
        "delay_s": 30.0,
        "status": 503,
        "code": -1000,
        "msg": "Unknown error, please check your request or try again later.",
        "path": "/fapi/v1/order",
        "method": "POST",
    },
    FaultKind.REJECT: {},
    FaultKind.PARTIAL_FILLS: {"chunks": 3, "delay_s": 0.2},
    FaultKind.NO_FUTURES_PERMISSION: {},
    FaultKind.CLOCK_DRIFT: {"offset_ms": -60_000},
    FaultKind.KEEPALIVE_FAIL: {"expire": True},
    FaultKind.USER_STREAM_SILENT: {},
    FaultKind.WS_REFUSE: {"scope": "all"},
}

FILTERS = ("api_key", "symbol", "side", "path", "method", "scope")


class Fault(BaseModel):
    id: int
    kind: FaultKind
    count: int | None = None
    expires_at: float | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    hits: int = 0

    def alive(self, now: float) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        return self.expires_at is None or now < self.expires_at

    def matches(self, context: dict[str, Any]) -> bool:
        for name in FILTERS:
            wanted = self.params.get(name)
            if wanted is None:
                continue
            value = context.get(name)
            if name == "scope":
                if wanted != "all" and value != wanted:
                    return False
            elif value != wanted:
                return False
        return True

    def public(self) -> dict[str, Any]:
        remaining = None if self.expires_at is None else max(0.0, self.expires_at - time.monotonic())
        return {"id": self.id, "kind": self.kind.value, "count": self.count, "seconds_left": remaining,
                "params": self.params, "hits": self.hits}


class FaultRegistry:
    """Not thread-safe: used from the venue's event loop (BinanceFake marshals calls onto it)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def arm(self, kind: FaultKind | str, *, count: int | None = None, seconds: float | None = None,
            **params: Any) -> Fault:
        """Arm a fault: for the next `count` matches, for `seconds`, both (whichever ends first) or until cleared."""
        kind = FaultKind(kind)
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        merged = {**DEFAULTS[kind], **{k: v for k, v in params.items() if v is not None}}
        if kind == FaultKind.REJECT and "code" not in merged:
            raise ValueError("a reject fault needs a code")
        if kind == FaultKind.ORDER_UNKNOWN and merged["mode"] not in ("disconnect", "timeout", "error"):
            raise ValueError("order_unknown mode must be disconnect, timeout or error")
        expires = None if seconds is None else time.monotonic() + seconds
        fault = Fault(id=next(self._ids), kind=kind, count=count, expires_at=expires, params=merged)
        self._faults.append(fault)
        return fault

    def clear(self, fault_id: int | None = None, kind: FaultKind | str | None = None) -> int:
        """Remove one fault by id, all of a kind, or all (no arguments). Returns how many were removed."""
        before = len(self._faults)
        if fault_id is not None:
            self._faults = [f for f in self._faults if f.id != fault_id]
        elif kind is not None:
            self._faults = [f for f in self._faults if f.kind != FaultKind(kind)]
        else:
            self._faults = []
        return before - len(self._faults)

    def _prune(self) -> None:
        now = time.monotonic()
        self._faults = [f for f in self._faults if f.alive(now)]

    def peek(self, kind: FaultKind, **context: Any) -> Fault | None:
        self._prune()
        for fault in self._faults:
            if fault.kind == kind and fault.matches(context):
                return fault
        return None

    def take(self, kind: FaultKind, **context: Any) -> Fault | None:
        """The first live matching fault of `kind`, with one count consumed."""
        fault = self.peek(kind, **context)
        if fault is None:
            return None
        fault.hits += 1
        if fault.count is not None:
            fault.count -= 1
        return fault

    def describe(self) -> list[dict[str, Any]]:
        self._prune()
        return [f.public() for f in self._faults]
