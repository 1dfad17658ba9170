"""Binance error responses: `{"code": -XXXX, "msg": "..."}` with the HTTP status Binance uses.

Messages are copied from Binance's USDⓈ-M error-code page (developers.binance.com,
derivatives/usds-margined-futures/error-code); `%s` placeholders are filled by the helpers below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# code -> default message (only the codes this fake can produce).
MESSAGES: dict[int, str] = {
    -1000: "An unknown error occured while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; current limit is %s requests per minute. Please use the websocket for live updates "
    "to avoid polling the API.",
    -1008: "Request throttled by system-level protection. Reduce-only/close-position orders are exempt. "
    "Please try again.",
    -1015: "Too many new orders; current limit is %s orders per %s.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1100: "Illegal characters found in parameter '%s'; legal range is '%s'.",
    -1102: "Mandatory parameter '%s' was not sent, was empty/null, or malformed.",
    -1106: "Parameter '%s' sent when not required.",
    -1111: "Precision is over the maximum defined for this asset.",
    -1115: "Invalid timeInForce.",
    -1116: "Invalid orderType.",
    -1117: "Invalid side.",
    -1120: "Invalid interval.",
    -1121: "Invalid symbol.",
    -1125: "This listenKey does not exist.",
    -1127: "More than %s hours between startTime and endTime.",
    -1128: "Combination of optional parameters invalid.",
    -1130: "Data sent for parameter '%s' is not valid.",
    -1136: "Invalid newOrderRespType.",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
    -2022: "ReduceOnly Order is rejected.",
    -4001: "Price less than 0.",
    -4002: "Price greater than max price.",
    -4003: "Quantity less than zero.",
    -4004: "Quantity less than min quantity.",
    -4005: "Quantity greater than max quantity.",
    -4013: "Price less than min price.",
    -4014: "Price not increased by tick size.",
    -4015: "Client order id is not valid.",
    -4023: "Qty not increased by step size.",
    -4028: "Leverage %s is not valid",
    -4046: "No need to change margin type.",
    -4047: "Margin type cannot be changed if there exists open orders.",
    -4048: "Margin type cannot be changed if there exists position.",
    -4059: "No need to change position side.",
    -4061: "Order's position side does not match user's setting.",
    -4067: "Position side cannot be changed if there exists open orders.",
    -4068: "Position side cannot be changed if there exists position.",
    -4116: "clientOrderId is duplicated",
    -4120: "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
    -4164: "Order's notional must be no smaller than %s (unless you choose reduce only).",
    -5021: "Due to the order could not be filled immediately, the FOK order has been rejected.",
    -5022: "Due to the order could not be executed as maker, the Post Only order will be rejected.",
}

# HTTP status per code where it is not 400.
STATUS: dict[int, int] = {
    -1000: 500,
    -1001: 500,
    -1003: 429,
    -1008: 503,
    -1015: 429,
    -2014: 401,
    -2015: 401,
}


@dataclass
class BinanceError(Exception):
    """An error the fake answers with; `headers` are added to the response (e.g. Retry-After)."""

    code: int
    msg: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code} {self.msg}"

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def error(code: int, *args: object, status: int | None = None, headers: dict[str, str] | None = None) -> BinanceError:
    """The error for `code` with its documented message (`args` fill the `%s` placeholders)."""
    template = MESSAGES.get(code, "An unknown error occured while processing the request.")
    msg = template % args if args else template.replace("%s", "").strip()
    return BinanceError(code, msg, status if status is not None else STATUS.get(code, 400), dict(headers or {}))


def mandatory(name: str) -> BinanceError:
    return error(-1102, name)


def either_mandatory(first: str, second: str) -> BinanceError:
    return BinanceError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!", 400)


def illegal_chars(name: str) -> BinanceError:
    return error(-1100, name, r"^([0-9]{1,20})(\.[0-9]{1,20})?$")


def timestamp_ahead() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.", 400)
