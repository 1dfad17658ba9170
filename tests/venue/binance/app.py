"""The aiohttp application: routes, and the middleware every /fapi and /sapi request goes through
(ban and fault checks, request weight, signed-endpoint errors as Binance JSON, rate-limit headers,
the request log, and the unknown-outcome fault that runs a request and then loses its answer)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from . import rest_account, rest_market, rest_orders
from .admin import add_admin_routes
from .errors import BinanceError
from .faults import Fault, FaultKind
from .ratelimit import weight_of
from .routes import KEY, ORDER_COUNTS, PARAMS, RAW_BODY, add_routes
from .venue import VENUE, Venue

# The REST modules register their handlers in routes.ROUTES when imported.
REST_MODULES = (rest_market, rest_orders, rest_account)

log = logging.getLogger(__name__)
WS_PREFIXES = ("/ws", "/stream", "/public/", "/market/", "/private/")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: BinanceError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=exc.headers,
                             dumps=lambda b: json.dumps(b, separators=(",", ":")))


def _params(raw_query: str, raw_body: str) -> dict[str, str]:
    """Query string and form body merged; a parameter sent in both takes the query string's value."""
    params = dict(parse_qsl(raw_body, keep_blank_values=True))
    params.update(parse_qsl(raw_query, keep_blank_values=True))
    return params


class PlainError(Exception):
    """An error answered with a plain-text body (not Binance JSON)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _request_fault(venue: Venue, context: dict[str, object], ip: str, now_ms: int) -> BinanceError | None:
    faults = venue.faults
    fault = faults.take(FaultKind.IP_BAN, **context)
    if fault is not None:
        retry = int(fault.params["retry_after"])
        return venue.limiter.ban_error(ip, now_ms + retry * 1000, now_ms)
    fault = faults.take(FaultKind.RATE_LIMIT, **context)
    if fault is not None:
        return BinanceError(
            -1003,
            f"Too many requests; current limit of IP({ip}) is {venue.config.weight_limit_1m} requests per minute. "
            "Please use the websocket for live updates to avoid polling the API.",
            429,
            {"Retry-After": str(fault.params["retry_after"])},
        )
    fault = faults.take(FaultKind.HTTP_ERROR, **context)
    if fault is not None:
        if fault.params["format"] == "text":
            raise PlainError(int(fault.params["status"]), str(fault.params["msg"]))
        return BinanceError(int(fault.params["code"]), str(fault.params["msg"]), int(fault.params["status"]))
    return None


async def _lose_response(request: web.Request, response: web.StreamResponse, fault: Fault) -> web.StreamResponse:
    """The request was executed; now its answer is lost (connection dropped / timed out) or replaced."""
    mode = fault.params["mode"]
    if mode == "error":
        return error_response(BinanceError(int(fault.params["code"]), str(fault.params["msg"]),
                                           int(fault.params["status"])))
    if mode == "timeout":
        await asyncio.sleep(float(fault.params["delay_s"]))
    if request.transport is not None:
        request.transport.close()
    raise asyncio.CancelledError


@web.middleware
async def venue_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/_fake/") or path.startswith(WS_PREFIXES):
        return await handler(request)
    venue = request.app[VENUE]
    now = venue.clock.now_ms()
    ip = request.remote or "127.0.0.1"
    raw_body = await request.text() if request.method in ("POST", "PUT", "DELETE") else ""
    params = _params(request.rel_url.raw_query_string, raw_body)
    request[PARAMS] = params
    request[RAW_BODY] = raw_body
    api_key = request.headers.get("X-MBX-APIKEY")
    context: dict[str, object] = {"api_key": api_key, "path": path, "method": request.method,
                                  "symbol": params.get("symbol"), "side": params.get("side")}
    entry: dict[str, object] = {
        "time": now, "method": request.method, "path": path,
        "params": {k: v for k, v in params.items() if k != "signature"}, "api_key": api_key,
    }
    try:
        venue.limiter.check_ban(ip, now)
        forced = _request_fault(venue, context, ip, now)
        if forced is not None:
            raise forced
        weight = weight_of(request.method, path, params)
        venue.limiter.add_weight(ip, weight, now)
        entry["weight"] = weight
        unknown = venue.faults.take(FaultKind.ORDER_UNKNOWN, **context)
        try:
            response = await handler(request)
        except BinanceError as exc:
            if unknown is None:
                raise
            entry.update(status=exc.status, code=exc.code, outcome=f"lost ({unknown.params['mode']})")
            venue.log_request(entry)
            response = error_response(exc)
            return await _lose_response(request, response, unknown)
        if unknown is not None:
            entry.update(status=response.status, outcome=f"lost ({unknown.params['mode']})")
            venue.log_request(entry)
            return await _lose_response(request, response, unknown)
    except BinanceError as exc:
        response = error_response(exc)
        entry.update(code=exc.code, msg=exc.msg)
    except PlainError as exc:
        response = web.Response(status=exc.status, text=exc.text)
    except web.HTTPNotFound:
        response = error_response(BinanceError(-5000, f"Path {path}, Method {request.method} is invalid", 404))
    except web.HTTPMethodNotAllowed:
        response = error_response(BinanceError(-5000, f"Path {path}, Method {request.method} is invalid", 405))
    response.headers["X-MBX-USED-WEIGHT-1M"] = str(venue.limiter.used_weight(ip, now))
    counts = request.get(ORDER_COUNTS)
    if counts is not None:
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(counts[0])
        response.headers["X-MBX-ORDER-COUNT-1M"] = str(counts[1])
    key = request.get(KEY)
    entry["status"] = response.status
    entry["account"] = key.account_id if key is not None else None
    venue.log_request(entry)
    return response


def build_app(venue: Venue) -> web.Application:
    app = web.Application(middlewares=[venue_middleware])
    app[VENUE] = venue
    add_routes(app)
    add_admin_routes(app)
    for prefix in ("", "/public", "/market", "/private"):
        app.router.add_get(f"{prefix}/ws", venue.hub.handle)
        app.router.add_get(f"{prefix}/ws/{{tail:.*}}", venue.hub.handle)
        app.router.add_get(f"{prefix}/stream", venue.hub.handle)
    return app
