"""Order endpoints: new, query, cancel, open and all orders, and the account's trades (userTrades)."""

from __future__ import annotations

from aiohttp import web

from . import account_payloads
from .config import KeySpec
from .errors import BinanceError, error
from .numbers import parse_int
from .routes import ORDER_COUNTS, Json, Security, account_of, limit_param, route
from .venue import Venue

SEVEN_DAYS_MS = 7 * 86_400_000



@route("POST", "/fapi/v1/order", Security.SIGNED)
async def new_order(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    account_id = account_of(key)
    request[ORDER_COUNTS] = venue.limiter.add_order(account_id, venue.clock.now_ms())
    assert key is not None
    order, ack = venue.engine.new_order(account_id, {**params, "_api_key": key.api_key})
    if params.get("newOrderRespType") == "RESULT":
        return account_payloads.order(venue.engine.specs[order.symbol], order)
    return ack


@route("GET", "/fapi/v1/order", Security.SIGNED)
async def query_order(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    order = venue.engine.find(account_of(key), params)
    return account_payloads.order(venue.engine.specs[order.symbol], order)


@route("GET", "/fapi/v1/openOrder", Security.SIGNED)
async def query_open_order(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    order = venue.engine.find(account_of(key), params)
    if not order.is_open:
        raise BinanceError(-2013, "Order does not exist.")
    return account_payloads.order(venue.engine.specs[order.symbol], order)


@route("DELETE", "/fapi/v1/order", Security.SIGNED)
async def cancel_order(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    order = venue.engine.cancel(account_of(key), params)
    return account_payloads.order(venue.engine.specs[order.symbol], order)


@route("DELETE", "/fapi/v1/allOpenOrders", Security.SIGNED)
async def cancel_all(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    venue.engine.cancel_all(account_of(key), params.get("symbol"))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


@route("GET", "/fapi/v1/openOrders", Security.SIGNED)
async def open_orders(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    symbol = params.get("symbol") or None
    if symbol is not None:
        venue.engine.spec(symbol)
    account = venue.engine.account(account_of(key))
    return [account_payloads.order(venue.engine.specs[o.symbol], o)
            for o in sorted(account.open_orders(symbol), key=lambda o: o.order_id)]


@route("GET", "/fapi/v1/allOrders", Security.SIGNED)
async def all_orders(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    spec = venue.engine.spec(params.get("symbol"))
    order_id = parse_int("orderId", params.get("orderId"))
    start = parse_int("startTime", params.get("startTime"))
    end = parse_int("endTime", params.get("endTime"))
    limit = limit_param(params, 500, 1000)
    orders = sorted(
        (o for o in venue.engine.account(account_of(key)).orders.values() if o.symbol == spec.symbol),
        key=lambda o: o.order_id,
    )
    if order_id is not None:
        orders = [o for o in orders if o.order_id >= order_id][:limit]
    else:
        if start is not None:
            orders = [o for o in orders if o.time >= start]
        if end is not None:
            orders = [o for o in orders if o.time <= end]
        orders = orders[:limit] if start is not None else orders[-limit:]
    return [account_payloads.order(spec, o) for o in orders]


@route("GET", "/fapi/v1/userTrades", Security.SIGNED)
async def user_trades(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    spec = venue.engine.spec(params.get("symbol"))
    from_id = parse_int("fromId", params.get("fromId"))
    start = parse_int("startTime", params.get("startTime"))
    end = parse_int("endTime", params.get("endTime"))
    order_id = parse_int("orderId", params.get("orderId"))
    limit = limit_param(params, 500, 1000)
    if from_id is not None and (start is not None or end is not None):
        raise error(-1128)
    if start is not None and end is not None and end - start > SEVEN_DAYS_MS:
        raise error(-1127, 168)
    trades = [t for t in venue.engine.account(account_of(key)).trades if t.symbol == spec.symbol]
    if order_id is not None:
        trades = [t for t in trades if t.order_id == order_id]
    if from_id is not None:
        trades = [t for t in trades if t.id >= from_id][:limit]
    else:
        now = venue.clock.now_ms()
        if start is None and end is None:
            start = now - SEVEN_DAYS_MS
        elif start is None:
            assert end is not None
            start = end - SEVEN_DAYS_MS
        elif end is None:
            end = start + SEVEN_DAYS_MS
        trades = [t for t in trades if t.time >= start and (end is None or t.time <= end)]
        trades = trades[:limit] if params.get("startTime") else trades[-limit:]
    return [account_payloads.user_trade(spec, t) for t in trades]
