"""Route table for the REST API: each handler declares its method, path and security type
(NONE, USER_STREAM: X-MBX-APIKEY, SIGNED: key + timestamp + HMAC signature); the wrapper checks
the security (and futures permission on /fapi) before the handler runs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import web

from .config import KeySpec
from .numbers import parse_int
from .venue import VENUE, Venue

Json = dict[str, Any]
PARAMS: web.RequestKey[dict[str, str]] = web.RequestKey("binance_params", dict)
RAW_BODY: web.RequestKey[str] = web.RequestKey("binance_raw_body", str)
KEY: web.RequestKey[KeySpec] = web.RequestKey("binance_key", KeySpec)
ORDER_COUNTS: web.RequestKey[tuple[int, int]] = web.RequestKey("binance_order_counts", tuple)


class Security(Enum):
    NONE = "NONE"
    USER_STREAM = "USER_STREAM"  # X-MBX-APIKEY only
    SIGNED = "SIGNED"  # TRADE / USER_DATA: key + timestamp + signature


Handler = Callable[[web.Request, Venue, dict[str, str], KeySpec | None], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    security: Security
    handler: Handler


ROUTES: list[Route] = []


def route(method: str, path: str, security: Security = Security.NONE) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, path, security, handler))
        return handler

    return register


def _wrap(spec: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        venue = request.app[VENUE]
        params: dict[str, str] = request[PARAMS]
        key: KeySpec | None = None
        header = request.headers.get("X-MBX-APIKEY")
        if spec.security is Security.USER_STREAM:
            key = venue.auth.api_key(header)
        elif spec.security is Security.SIGNED:
            key = venue.auth.signed(header, request.rel_url.raw_query_string, request[RAW_BODY], params)
        if key is not None:
            request[KEY] = key
            if spec.path.startswith("/fapi/"):
                venue.auth.require_futures(key)
        body = await spec.handler(request, venue, params, key)
        return web.json_response(body, dumps=_dumps)

    return handle


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def add_routes(app: web.Application) -> None:
    for spec in ROUTES:
        app.router.add_route(spec.method, spec.path, _wrap(spec))


def account_of(key: KeySpec | None) -> str:
    assert key is not None
    return key.account_id


def limit_param(params: dict[str, str], default: int, maximum: int) -> int:
    limit = parse_int("limit", params.get("limit")) or default
    return max(1, min(limit, maximum))
