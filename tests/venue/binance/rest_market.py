"""Public market-data endpoints: ping, time, exchangeInfo, depth, tickers, premiumIndex, klines."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import market_payloads
from .config import KeySpec
from .errors import error, mandatory
from .market import KLINE_INTERVALS
from .numbers import parse_int
from .routes import Json, limit_param, route
from .venue import Venue


@route("GET", "/fapi/v1/ping")
async def ping(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    return {}


@route("GET", "/fapi/v1/time")
async def server_time(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    return {"serverTime": venue.clock.now_ms()}


@route("GET", "/fapi/v1/exchangeInfo")
async def exchange_info(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Json:
    cfg = venue.config
    return market_payloads.exchange_info(cfg.symbols, venue.clock.now_ms(), venue.started_ms - 86_400_000 * 365,
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
    limit = limit_param(params, 500, 1000)
    return market_payloads.depth(spec, venue.market.symbols[spec.symbol].top, limit, venue.clock.now_ms())


@route("GET", "/fapi/v1/ticker/bookTicker")
async def book_ticker(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    return _one_or_all(params, [market_payloads.book_ticker(m.spec, m.top) for m in _markets(venue, params)])


@route("GET", "/fapi/v1/premiumIndex")
async def premium_index(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    now = venue.clock.now_ms()
    return _one_or_all(params, [market_payloads.premium_index(m, now) for m in _markets(venue, params)])


@route("GET", "/fapi/v1/ticker/24hr")
async def ticker_24hr(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    now = venue.clock.now_ms()
    return _one_or_all(params, [market_payloads.ticker_24hr(m, now) for m in _markets(venue, params)])


@route("GET", "/fapi/v1/ticker/price")
async def ticker_price(request: web.Request, venue: Venue, params: dict[str, str], key: KeySpec | None) -> Any:
    now = venue.clock.now_ms()
    return _one_or_all(params, [market_payloads.ticker_price(m, now) for m in _markets(venue, params)])


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
    limit = limit_param(params, 500, 1500)
    bars = venue.market.symbols[spec.symbol].history(interval, start, end, limit, venue.clock.now_ms())
    return [market_payloads.kline_row(spec, bar) for bar in bars]
