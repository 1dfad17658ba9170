"""REST handlers: /fapi/v1|v2|v3 market data, trading and account endpoints, listenKey, and the one
/sapi endpoint an adapter needs (GET /sapi/v1/account/apiRestrictions: the key's enableFutures)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import web

from . import payloads
from .config import KeySpec
from .errors import BinanceError, error, mandatory
from .faults import FaultKind
from .market import KLINE_INTERVALS
from .numbers import ZERO, fmt, parse_int, plain
from .venue import VENUE, Venue

Json = dict[str, Any]
PARAMS: web.RequestKey[dict[str, str]] = web.RequestKey("binance_params", dict)
RAW_BODY: web.RequestKey[str] = web.RequestKey("binance_raw_body", str)
KEY: web.RequestKey[KeySpec] = web.RequestKey("binance_key", KeySpec)
ORDER_COUNTS: web.RequestKey[tuple[int, int]] = web.RequestKey("binance_order_counts", tuple)
SEVEN_DAYS_MS = 7 * 86_400_000


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


def _account(key: KeySpec | None) -> str:
    assert key is not None
    return key.account_id


def _limit(params: dict[str, str], default: int, maximum: int) -> int:
    limit = parse_int("limit", params.get("limit")) or default
    return max(1, min(limit, maximum))


# --- market data --------------------------------------------------------------------------------


@route("GET", "/fapi/v1/ping")
async def ping(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    return {}


@route("GET", "/fapi/v1/time")
async def server_time(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    return {"serverTime": venue.clock.now_ms()}


@route("GET", "/fapi/v1/exchangeInfo")
async def exchange_info(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    cfg = venue.config
    return payloads.exchange_info(cfg.symbols, venue.clock.now_ms(), venue.started_ms - 86_400_000 * 365,
                                  cfg.weight_limit_1m, cfg.order_limit_1m, cfg.order_limit_10s)


def _markets(venue: Venue, params: dict[str, str]) -> list[Any]:
    symbol = params.get("symbol")
    if symbol:
        venue.engine.spec(symbol)
        return [venue.market.symbols[symbol]]
    return list(venue.market.symbols.values())


def _one_or_all(params: dict[str, str], items: list[Json]) -> Json | list[Json]:
    return items[0] if params.get("symbol") else items


@route("GET", "/fapi/v1/depth")
async def depth(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    spec = venue.engine.spec(params.get("symbol"))
    limit = _limit(params, 500, 1000)
    return payloads.depth(spec, venue.market.symbols[spec.symbol].top, limit, venue.clock.now_ms())


@route("GET", "/fapi/v1/ticker/bookTicker")
async def book_ticker(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    return _one_or_all(params, [payloads.book_ticker(m.spec, m.top) for m in _markets(venue, params)])


@route("GET", "/fapi/v1/premiumIndex")
async def premium_index(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    now = venue.clock.now_ms()
    return _one_or_all(params, [payloads.premium_index(m, now) for m in _markets(venue, params)])


@route("GET", "/fapi/v1/ticker/24hr")
async def ticker_24hr(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    now = venue.clock.now_ms()
    return _one_or_all(params, [payloads.ticker_24hr(m, now) for m in _markets(venue, params)])


@route("GET", "/fapi/v1/ticker/price")
async def ticker_price(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    now = venue.clock.now_ms()
    return _one_or_all(params, [payloads.ticker_price(m, now) for m in _markets(venue, params)])


route("GET", "/fapi/v2/ticker/price")(ticker_price)


@route("GET", "/fapi/v1/klines")
async def klines(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Any]:
    spec = venue.engine.spec(params.get("symbol"))
    interval = params.get("interval")
    if not interval:
        raise mandatory("interval")
    if interval not in KLINE_INTERVALS:
        raise error(-1120)
    start = parse_int("startTime", params.get("startTime"))
    end = parse_int("endTime", params.get("endTime"))
    limit = _limit(params, 500, 1500)
    bars = venue.market.symbols[spec.symbol].history(interval, start, end, limit, venue.clock.now_ms())
    return [payloads.kline_row(spec, bar) for bar in bars]


# --- orders -------------------------------------------------------------------------------------


@route("POST", "/fapi/v1/order", Security.SIGNED)
async def new_order(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    account_id = _account(key)
    request[ORDER_COUNTS] = venue.limiter.add_order(account_id, venue.clock.now_ms())
    assert key is not None
    order, ack = venue.engine.new_order(account_id, {**params, "_api_key": key.api_key})
    if params.get("newOrderRespType") == "RESULT":
        return payloads.order(venue.engine.specs[order.symbol], order)
    return ack


@route("GET", "/fapi/v1/order", Security.SIGNED)
async def query_order(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    order = venue.engine.find(_account(key), params)
    return payloads.order(venue.engine.specs[order.symbol], order)


@route("GET", "/fapi/v1/openOrder", Security.SIGNED)
async def query_open_order(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    order = venue.engine.find(_account(key), params)
    if not order.is_open:
        raise BinanceError(-2013, "Order does not exist.")
    return payloads.order(venue.engine.specs[order.symbol], order)


@route("DELETE", "/fapi/v1/order", Security.SIGNED)
async def cancel_order(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    order = venue.engine.cancel(_account(key), params)
    return payloads.order(venue.engine.specs[order.symbol], order)


@route("DELETE", "/fapi/v1/allOpenOrders", Security.SIGNED)
async def cancel_all(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    venue.engine.cancel_all(_account(key), params.get("symbol"))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


@route("GET", "/fapi/v1/openOrders", Security.SIGNED)
async def open_orders(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    symbol = params.get("symbol") or None
    if symbol is not None:
        venue.engine.spec(symbol)
    account = venue.engine.account(_account(key))
    return [payloads.order(venue.engine.specs[o.symbol], o)
            for o in sorted(account.open_orders(symbol), key=lambda o: o.order_id)]


@route("GET", "/fapi/v1/allOrders", Security.SIGNED)
async def all_orders(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    spec = venue.engine.spec(params.get("symbol"))
    order_id = parse_int("orderId", params.get("orderId"))
    start = parse_int("startTime", params.get("startTime"))
    end = parse_int("endTime", params.get("endTime"))
    limit = _limit(params, 500, 1000)
    orders = sorted(
        (o for o in venue.engine.account(_account(key)).orders.values() if o.symbol == spec.symbol),
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
    return [payloads.order(spec, o) for o in orders]


@route("GET", "/fapi/v1/userTrades", Security.SIGNED)
async def user_trades(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    spec = venue.engine.spec(params.get("symbol"))
    from_id = parse_int("fromId", params.get("fromId"))
    start = parse_int("startTime", params.get("startTime"))
    end = parse_int("endTime", params.get("endTime"))
    order_id = parse_int("orderId", params.get("orderId"))
    limit = _limit(params, 500, 1000)
    if from_id is not None and (start is not None or end is not None):
        raise error(-1128)
    if start is not None and end is not None and end - start > SEVEN_DAYS_MS:
        raise error(-1127, 168)
    trades = [t for t in venue.engine.account(_account(key)).trades if t.symbol == spec.symbol]
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
    return [payloads.user_trade(spec, t) for t in trades]


# --- account ------------------------------------------------------------------------------------


def _balance_row(venue: Venue, key: KeySpec | None) -> Json:
    account = venue.engine.account(_account(key))
    available = venue.engine.available(account)
    return {
        "accountAlias": "SgsR",
        "asset": "USDT",
        "balance": fmt(account.balance, 8),
        "crossWalletBalance": fmt(account.balance, 8),
        "crossUnPnl": fmt(venue.engine.unrealized(account), 8),
        "availableBalance": fmt(available, 8),
        "maxWithdrawAmount": fmt(max(available, ZERO), 8),
        "marginAvailable": True,
        "updateTime": account.balance_update_time,
    }


@route("GET", "/fapi/v2/balance", Security.SIGNED)
async def balance(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    return [_balance_row(venue, key)]


route("GET", "/fapi/v3/balance", Security.SIGNED)(balance)


def _account_totals(venue: Venue, key: KeySpec | None) -> Json:
    engine = venue.engine
    account = engine.account(_account(key))
    upnl = engine.unrealized(account)
    position_margin = engine.position_margin(account)
    order_margin = engine.open_order_margin(account)
    maint = sum(
        (abs(p.amount) * engine.mark(p.symbol) * engine.specs[p.symbol].maint_margin_rate
         for p in account.positions.values()),
        ZERO,
    )
    available = engine.available(account)
    money = {
        "totalInitialMargin": position_margin + order_margin,
        "totalMaintMargin": maint,
        "totalWalletBalance": account.balance,
        "totalUnrealizedProfit": upnl,
        "totalMarginBalance": account.balance + upnl,
        "totalPositionInitialMargin": position_margin,
        "totalOpenOrderInitialMargin": order_margin,
        "totalCrossWalletBalance": account.balance,
        "totalCrossUnPnl": upnl,
        "availableBalance": available,
        "maxWithdrawAmount": max(available, ZERO),
    }
    totals: Json = {name: fmt(value, 8) for name, value in money.items()}
    totals["assets"] = [
        {
            "asset": "USDT",
            "walletBalance": totals["totalWalletBalance"],
            "unrealizedProfit": totals["totalUnrealizedProfit"],
            "marginBalance": totals["totalMarginBalance"],
            "maintMargin": totals["totalMaintMargin"],
            "initialMargin": totals["totalInitialMargin"],
            "positionInitialMargin": totals["totalPositionInitialMargin"],
            "openOrderInitialMargin": totals["totalOpenOrderInitialMargin"],
            "crossWalletBalance": totals["totalCrossWalletBalance"],
            "crossUnPnl": totals["totalCrossUnPnl"],
            "availableBalance": totals["availableBalance"],
            "maxWithdrawAmount": totals["maxWithdrawAmount"],
            "marginAvailable": True,
            "updateTime": account.balance_update_time,
        }
    ]
    return totals


@route("GET", "/fapi/v3/account", Security.SIGNED)
async def account_v3(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    engine = venue.engine
    account = engine.account(_account(key))
    body = _account_totals(venue, key)
    body["positions"] = [
        payloads.account_position_v3(engine.specs[p.symbol], account, p, engine.mark(p.symbol))
        for p in account.positions.values() if p.amount or account.open_orders(p.symbol)
    ]
    return body


@route("GET", "/fapi/v2/account", Security.SIGNED)
async def account_v2(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    engine = venue.engine
    account = engine.account(_account(key))
    body: Json = {
        "feeTier": 0,
        "feeBurn": False,
        "canDeposit": True,
        "canWithdraw": True,
        "canTrade": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        **_account_totals(venue, key),
    }
    body["positions"] = [
        payloads.account_position_v2(engine.specs[p.symbol], account, p, engine.mark(p.symbol),
                                     engine.open_order_margin(account, p.symbol))
        for p in engine.positions_for(account, None)
    ]
    return body


@route("GET", "/fapi/v3/positionRisk", Security.SIGNED)
async def position_risk_v3(request: web.Request, venue: Venue, params: dict[str, str],
                           key: KeySpec | None) -> list[Json]:
    engine = venue.engine
    symbol = params.get("symbol") or None
    if symbol is not None:
        engine.spec(symbol)
    account = engine.account(_account(key))
    return [
        payloads.position_v3(engine.specs[p.symbol], account, p, engine.mark(p.symbol),
                             engine.open_order_margin(account, p.symbol))
        for p in engine.positions_for(account, symbol)
        if p.amount or account.open_orders(p.symbol)
    ]


@route("GET", "/fapi/v2/positionRisk", Security.SIGNED)
async def position_risk_v2(request: web.Request, venue: Venue, params: dict[str, str],
                           key: KeySpec | None) -> list[Json]:
    engine = venue.engine
    symbol = params.get("symbol") or None
    if symbol is not None:
        engine.spec(symbol)
    account = engine.account(_account(key))
    return [payloads.position_v2(engine.specs[p.symbol], account, p, engine.mark(p.symbol))
            for p in engine.positions_for(account, symbol)]


@route("GET", "/fapi/v1/positionSide/dual", Security.SIGNED)
async def get_dual(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    return {"dualSidePosition": venue.engine.account(_account(key)).dual_side}


@route("POST", "/fapi/v1/positionSide/dual", Security.SIGNED)
async def set_dual(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    raw = params.get("dualSidePosition")
    if raw is not None and raw.lower() not in ("true", "false"):
        raise error(-1130, "dualSidePosition")
    venue.engine.set_dual_side(_account(key), None if raw is None else raw.lower() == "true")
    return {"code": 200, "msg": "success"}


@route("POST", "/fapi/v1/leverage", Security.SIGNED)
async def set_leverage(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    leverage = parse_int("leverage", params.get("leverage"))
    return venue.engine.set_leverage(_account(key), params.get("symbol"), leverage)


@route("POST", "/fapi/v1/marginType", Security.SIGNED)
async def set_margin_type(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    venue.engine.set_margin_type(_account(key), params.get("symbol"), params.get("marginType"))
    return {"code": 200, "msg": "success"}


@route("GET", "/fapi/v1/leverageBracket", Security.SIGNED)
async def leverage_bracket(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    symbol = params.get("symbol") or None
    specs = [venue.engine.spec(symbol)] if symbol else venue.config.symbols
    rows = [
        {
            "symbol": spec.symbol,
            "notionalCoef": 1.0,
            "brackets": [
                {"bracket": 1, "initialLeverage": spec.max_leverage, "notionalCap": 1_000_000, "notionalFloor": 0,
                 "maintMarginRatio": float(spec.maint_margin_rate), "cum": 0.0},
                {"bracket": 2, "initialLeverage": 20, "notionalCap": 10_000_000, "notionalFloor": 1_000_000,
                 "maintMarginRatio": float(spec.maint_margin_rate * 2),
                 "cum": float(spec.maint_margin_rate * 1_000_000)},
            ],
        }
        for spec in specs
    ]
    return rows[0] if symbol else rows


@route("GET", "/fapi/v1/commissionRate", Security.SIGNED)
async def commission_rate(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    spec = venue.engine.spec(params.get("symbol"))
    return {
        "symbol": spec.symbol,
        "makerCommissionRate": plain(venue.config.maker_fee),
        "takerCommissionRate": plain(venue.config.taker_fee),
        "rpiCommissionRate": "0",
    }


@route("GET", "/fapi/v1/accountConfig", Security.SIGNED)
async def account_config(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    account = venue.engine.account(_account(key))
    return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
            "dualSidePosition": account.dual_side, "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1}


@route("GET", "/fapi/v1/symbolConfig", Security.SIGNED)
async def symbol_config(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    symbol = params.get("symbol") or None
    specs = [venue.engine.spec(symbol)] if symbol else venue.config.symbols
    account = venue.engine.account(_account(key))
    return [{"symbol": s.symbol, "marginType": account.margin_type_of(s.symbol), "isAutoAddMargin": "false",
             "leverage": account.leverage_of(s.symbol), "maxNotionalValue": "1000000"} for s in specs]


# --- user data stream ---------------------------------------------------------------------------


@route("POST", "/fapi/v1/listenKey", Security.USER_STREAM)
async def create_listen_key(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    assert key is not None
    lk = venue.listen_keys.create(key.account_id, key.api_key, venue.clock.now_ms())
    return {"listenKey": lk.key}


@route("PUT", "/fapi/v1/listenKey", Security.USER_STREAM)
async def keepalive_listen_key(request: web.Request, venue: Venue, params: dict[str, str],
                               key: KeySpec | None) -> Json:
    assert key is not None
    failing = venue.faults.take(FaultKind.KEEPALIVE_FAIL, api_key=key.api_key)
    if failing is not None:
        if failing.params.get("expire", True):
            venue.listen_keys.expire_all(key.account_id, notify=False)
        raise error(-1125)
    lk = venue.listen_keys.keepalive(key.account_id)
    return {"listenKey": lk.key}


@route("DELETE", "/fapi/v1/listenKey", Security.USER_STREAM)
async def close_listen_key(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    assert key is not None
    venue.listen_keys.close(key.account_id)
    return {}


# --- wallet (sapi) ------------------------------------------------------------------------------


@route("GET", "/sapi/v1/account/apiRestrictions", Security.SIGNED)
async def api_restrictions(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    assert key is not None
    revoked = venue.faults.peek(FaultKind.NO_FUTURES_PERMISSION, api_key=key.api_key) is not None
    return {
        "ipRestrict": False,
        "createTime": venue.started_ms - 86_400_000,
        "enableReading": key.enable_reading,
        "enableWithdrawals": False,
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableFutures": key.enable_futures and not revoked,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enableSpotAndMarginTrading": False,
        "enablePortfolioMarginTrading": False,
    }
