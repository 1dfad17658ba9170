"""Account endpoints: balances, account, positions, position mode, leverage, margin type, fees,
the user-data stream's listenKey, and GET /sapi/v1/account/apiRestrictions (enableFutures)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import account_payloads
from .config import KeySpec
from .errors import error
from .faults import FaultKind
from .numbers import ZERO, fmt, parse_int, plain
from .routes import Json, Security, account_of, route
from .venue import Venue


def _balance_row(venue: Venue, key: KeySpec | None) -> Json:
    account = venue.engine.account(account_of(key))
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
    account = engine.account(account_of(key))
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
    account = engine.account(account_of(key))
    body = _account_totals(venue, key)
    body["positions"] = [
        account_payloads.account_position_v3(engine.specs[p.symbol], account, p, engine.mark(p.symbol))
        for p in account.positions.values() if p.amount or account.open_orders(p.symbol)
    ]
    return body


@route("GET", "/fapi/v2/account", Security.SIGNED)
async def account_v2(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    engine = venue.engine
    account = engine.account(account_of(key))
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
        account_payloads.account_position_v2(engine.specs[p.symbol], account, p, engine.mark(p.symbol),
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
    account = engine.account(account_of(key))
    return [
        account_payloads.position_v3(engine.specs[p.symbol], account, p, engine.mark(p.symbol),
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
    account = engine.account(account_of(key))
    return [account_payloads.position_v2(engine.specs[p.symbol], account, p, engine.mark(p.symbol))
            for p in engine.positions_for(account, symbol)]


@route("GET", "/fapi/v1/positionSide/dual", Security.SIGNED)
async def get_dual(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    return {"dualSidePosition": venue.engine.account(account_of(key)).dual_side}


@route("POST", "/fapi/v1/positionSide/dual", Security.SIGNED)
async def set_dual(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    raw = params.get("dualSidePosition")
    if raw is not None and raw.lower() not in ("true", "false"):
        raise error(-1130, "dualSidePosition")
    venue.engine.set_dual_side(account_of(key), None if raw is None else raw.lower() == "true")
    return {"code": 200, "msg": "success"}


@route("POST", "/fapi/v1/leverage", Security.SIGNED)
async def set_leverage(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    leverage = parse_int("leverage", params.get("leverage"))
    return venue.engine.set_leverage(account_of(key), params.get("symbol"), leverage)


@route("POST", "/fapi/v1/marginType", Security.SIGNED)
async def set_margin_type(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    venue.engine.set_margin_type(account_of(key), params.get("symbol"), params.get("marginType"))
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
    account = venue.engine.account(account_of(key))
    return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
            "dualSidePosition": account.dual_side, "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1}


@route("GET", "/fapi/v1/symbolConfig", Security.SIGNED)
async def symbol_config(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> list[Json]:
    symbol = params.get("symbol") or None
    specs = [venue.engine.spec(symbol)] if symbol else venue.config.symbols
    account = venue.engine.account(account_of(key))
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
