"""Market-data bodies and market stream events exactly as Binance USDⓈ-M sends them (numbers as strings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .config import SymbolSpec
from .market import FUNDING_RATE, INTEREST_RATE, BookTop, Kline, SymbolMarket
from .numbers import ZERO, fmt, plain

MONEY = 8
Json = dict[str, Any]


# --- exchange information -----------------------------------------------------------------------


def symbol_info(spec: SymbolSpec, onboard_ms: int) -> Json:
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": onboard_ms,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.quote_asset,
        "pricePrecision": spec.price_places,
        "quantityPrecision": spec.qty_places,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": ["PoW"],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": plain(spec.min_price),
                "maxPrice": plain(spec.max_price),
                "tickSize": plain(spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": plain(spec.min_qty),
                "maxQty": plain(spec.max_qty),
                "stepSize": plain(spec.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": plain(spec.market_min_qty),
                "maxQty": plain(spec.market_max_qty),
                "stepSize": plain(spec.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": plain(spec.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


def exchange_info(specs: list[SymbolSpec], now_ms: int, onboard_ms: int, weight_limit: int, order_limit_1m: int,
                  order_limit_10s: int) -> Json:
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": order_limit_1m},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": order_limit_10s},
        ],
        "exchangeFilters": [],
        "assets": [
            {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
            {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "-0.10000000"},
        ],
        "symbols": [symbol_info(spec, onboard_ms) for spec in specs],
    }


# --- market data --------------------------------------------------------------------------------


def book_ticker(spec: SymbolSpec, top: BookTop) -> Json:
    p, q = spec.price_places, spec.qty_places
    return {
        "symbol": spec.symbol,
        "bidPrice": fmt(top.bid, p),
        "bidQty": fmt(top.bid_qty, q),
        "askPrice": fmt(top.ask, p),
        "askQty": fmt(top.ask_qty, q),
        "time": top.time_ms,
        "lastUpdateId": top.update_id,
    }


def depth(spec: SymbolSpec, top: BookTop, limit: int, now_ms: int) -> Json:
    p, q = spec.price_places, spec.qty_places
    bids = []
    asks = []
    for level in range(limit):
        grow = Decimal(1 + level)
        bids.append([fmt(top.bid - spec.tick_size * level, p), fmt(top.bid_qty * grow, q)])
        asks.append([fmt(top.ask + spec.tick_size * level, p), fmt(top.ask_qty * grow, q)])
    return {"lastUpdateId": top.update_id, "E": now_ms, "T": top.time_ms, "bids": bids, "asks": asks}


def premium_index(market: SymbolMarket, now_ms: int) -> Json:
    mark = fmt(market.mark_price, MONEY)
    return {
        "symbol": market.spec.symbol,
        "markPrice": mark,
        "indexPrice": mark,
        "estimatedSettlePrice": mark,
        "lastFundingRate": fmt(FUNDING_RATE, MONEY),
        "interestRate": fmt(INTEREST_RATE, MONEY),
        "nextFundingTime": market.next_funding_ms(now_ms),
        "time": now_ms,
    }


def ticker_24hr(market: SymbolMarket, now_ms: int) -> Json:
    spec = market.spec
    p, q = spec.price_places, spec.qty_places
    change = market.last_price - market.day_open
    percent = change / market.day_open * 100 if market.day_open else ZERO
    weighted = market.day_quote_volume / market.day_volume if market.day_volume else market.last_price
    return {
        "symbol": spec.symbol,
        "priceChange": fmt(change, p),
        "priceChangePercent": fmt(percent, 3),
        "weightedAvgPrice": fmt(weighted, p),
        "lastPrice": fmt(market.last_price, p),
        "lastQty": fmt(market.last_qty, q),
        "openPrice": fmt(market.day_open, p),
        "highPrice": fmt(market.day_high, p),
        "lowPrice": fmt(market.day_low, p),
        "volume": fmt(market.day_volume, q),
        "quoteVolume": fmt(market.day_quote_volume, 2),
        "openTime": now_ms - 86_400_000,
        "closeTime": now_ms,
        "firstId": max(market.first_trade_id, 0),
        "lastId": max(market.last_trade_id, 0),
        "count": market.day_trades,
    }


def ticker_price(market: SymbolMarket, now_ms: int) -> Json:
    return {"symbol": market.spec.symbol, "price": fmt(market.last_price, market.spec.price_places), "time": now_ms}


def kline_row(spec: SymbolSpec, bar: Kline) -> list[Any]:
    p, q = spec.price_places, spec.qty_places
    return [
        bar.open_time,
        fmt(bar.open, p),
        fmt(bar.high, p),
        fmt(bar.low, p),
        fmt(bar.close, p),
        fmt(bar.volume, q),
        bar.close_time,
        fmt(bar.quote_volume, 5),
        bar.trades,
        fmt(bar.taker_buy_volume, q),
        fmt(bar.taker_buy_quote, 5),
        "0",
    ]


# --- market stream events -----------------------------------------------------------------------


def book_ticker_event(spec: SymbolSpec, top: BookTop, now_ms: int) -> Json:
    p, q = spec.price_places, spec.qty_places
    return {
        "e": "bookTicker",
        "u": top.update_id,
        "E": now_ms,
        "T": top.time_ms,
        "s": spec.symbol,
        "b": fmt(top.bid, p),
        "B": fmt(top.bid_qty, q),
        "a": fmt(top.ask, p),
        "A": fmt(top.ask_qty, q),
    }


def mark_price_event(market: SymbolMarket, now_ms: int) -> Json:
    mark = fmt(market.mark_price, MONEY)
    return {
        "e": "markPriceUpdate",
        "E": now_ms,
        "s": market.spec.symbol,
        "p": mark,
        "i": mark,
        "P": mark,
        "r": fmt(FUNDING_RATE, MONEY),
        "T": market.next_funding_ms(now_ms),
    }


def kline_event(spec: SymbolSpec, bar: Kline, now_ms: int) -> Json:
    p, q = spec.price_places, spec.qty_places
    return {
        "e": "kline",
        "E": now_ms,
        "s": spec.symbol,
        "k": {
            "t": bar.open_time,
            "T": bar.close_time,
            "s": spec.symbol,
            "i": bar.interval,
            "f": bar.first_trade_id,
            "L": bar.last_trade_id,
            "o": fmt(bar.open, p),
            "c": fmt(bar.close, p),
            "h": fmt(bar.high, p),
            "l": fmt(bar.low, p),
            "v": fmt(bar.volume, q),
            "n": bar.trades,
            "x": bar.closed,
            "q": fmt(bar.quote_volume, 4),
            "V": fmt(bar.taker_buy_volume, q),
            "Q": fmt(bar.taker_buy_quote, 4),
            "B": "0",
        },
    }
