"""JSON bodies and stream events exactly as Binance USDⓈ-M sends them (numbers as strings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .account import Account, Order, Position, Trade
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


# --- orders, trades, positions, balances --------------------------------------------------------


def order(spec: SymbolSpec, o: Order) -> Json:
    p, q = spec.price_places, spec.qty_places
    return {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_order_id,
        "price": fmt(o.price, p),
        "avgPrice": fmt(o.avg_price, p + 3),
        "origQty": fmt(o.orig_qty, q),
        "executedQty": fmt(o.executed_qty, q),
        "cumQty": fmt(o.executed_qty, q),
        "cumQuote": fmt(o.cum_quote, MONEY),
        "timeInForce": o.time_in_force,
        "type": o.type,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": o.side,
        "positionSide": o.position_side,
        "stopPrice": fmt(ZERO, p),
        "workingType": o.working_type,
        "priceProtect": False,
        "origType": o.type,
        "priceMatch": o.price_match,
        "selfTradePreventionMode": o.self_trade_prevention,
        "goodTillDate": o.good_till_date,
        "time": o.time,
        "updateTime": o.update_time,
    }


def user_trade(spec: SymbolSpec, t: Trade) -> Json:
    p, q = spec.price_places, spec.qty_places
    return {
        "symbol": t.symbol,
        "id": t.id,
        "orderId": t.order_id,
        "side": t.side,
        "price": fmt(t.price, p),
        "qty": fmt(t.qty, q),
        "realizedPnl": fmt(t.realized_pnl, MONEY),
        "quoteQty": fmt(t.quote_qty, MONEY),
        "commission": fmt(t.commission, MONEY),
        "commissionAsset": t.commission_asset,
        "time": t.time,
        "positionSide": t.position_side,
        "buyer": t.buyer,
        "maker": t.maker,
    }


def _margins(spec: SymbolSpec, pos: Position, mark: Decimal, leverage: int) -> tuple[Decimal, Decimal, Decimal]:
    notional = pos.amount * mark
    initial = abs(notional) / leverage
    maint = abs(notional) * spec.maint_margin_rate
    return notional, initial, maint


def position_v3(spec: SymbolSpec, account: Account, pos: Position, mark: Decimal, open_order_margin: Decimal) -> Json:
    p = spec.price_places
    notional, initial, maint = _margins(spec, pos, mark, account.leverage_of(spec.symbol))
    return {
        "symbol": pos.symbol,
        "positionSide": pos.side,
        "positionAmt": fmt(pos.amount, spec.qty_places),
        "entryPrice": fmt(pos.entry_price, p + 5),
        "breakEvenPrice": fmt(pos.breakeven_price, p + 6),
        "markPrice": fmt(mark, MONEY),
        "unRealizedProfit": fmt(pos.unrealized(mark), MONEY),
        "liquidationPrice": "0",
        "isolatedMargin": "0",
        "notional": fmt(notional, MONEY),
        "marginAsset": spec.quote_asset,
        "isolatedWallet": "0",
        "initialMargin": fmt(initial + open_order_margin, MONEY),
        "maintMargin": fmt(maint, MONEY),
        "positionInitialMargin": fmt(initial, MONEY),
        "openOrderInitialMargin": fmt(open_order_margin, MONEY),
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": pos.update_time,
    }


def position_v2(spec: SymbolSpec, account: Account, pos: Position, mark: Decimal) -> Json:
    p = spec.price_places
    notional, _initial, _maint = _margins(spec, pos, mark, account.leverage_of(spec.symbol))
    return {
        "symbol": pos.symbol,
        "positionAmt": fmt(pos.amount, spec.qty_places),
        "entryPrice": fmt(pos.entry_price, p + 5),
        "breakEvenPrice": fmt(pos.breakeven_price, p + 6),
        "markPrice": fmt(mark, MONEY),
        "unRealizedProfit": fmt(pos.unrealized(mark), MONEY),
        "liquidationPrice": "0",
        "leverage": str(account.leverage_of(spec.symbol)),
        "maxNotionalValue": "1000000",
        "marginType": "cross" if account.margin_type_of(spec.symbol) == "CROSSED" else "isolated",
        "isolatedMargin": "0.00000000",
        "isAutoAddMargin": "false",
        "positionSide": pos.side,
        "notional": fmt(notional, MONEY),
        "isolatedWallet": "0",
        "updateTime": pos.update_time,
        "isolated": account.margin_type_of(spec.symbol) == "ISOLATED",
        "adlQuantile": 0,
    }


def account_position_v3(spec: SymbolSpec, account: Account, pos: Position, mark: Decimal) -> Json:
    notional, initial, maint = _margins(spec, pos, mark, account.leverage_of(spec.symbol))
    return {
        "symbol": pos.symbol,
        "positionSide": pos.side,
        "positionAmt": fmt(pos.amount, spec.qty_places),
        "unrealizedProfit": fmt(pos.unrealized(mark), MONEY),
        "isolatedMargin": "0",
        "notional": fmt(notional, MONEY),
        "isolatedWallet": "0",
        "initialMargin": fmt(initial, MONEY),
        "maintMargin": fmt(maint, MONEY),
        "updateTime": pos.update_time,
    }


def account_position_v2(spec: SymbolSpec, account: Account, pos: Position, mark: Decimal,
                        open_order_margin: Decimal) -> Json:
    p = spec.price_places
    notional, initial, maint = _margins(spec, pos, mark, account.leverage_of(spec.symbol))
    return {
        "symbol": pos.symbol,
        "initialMargin": fmt(initial + open_order_margin, MONEY),
        "maintMargin": fmt(maint, MONEY),
        "unrealizedProfit": fmt(pos.unrealized(mark), MONEY),
        "positionInitialMargin": fmt(initial, MONEY),
        "openOrderInitialMargin": fmt(open_order_margin, MONEY),
        "leverage": str(account.leverage_of(spec.symbol)),
        "isolated": account.margin_type_of(spec.symbol) == "ISOLATED",
        "entryPrice": fmt(pos.entry_price, p + 5),
        "breakEvenPrice": fmt(pos.breakeven_price, p + 6),
        "maxNotional": "1000000",
        "bidNotional": "0",
        "askNotional": "0",
        "positionSide": pos.side,
        "positionAmt": fmt(pos.amount, spec.qty_places),
        "notional": fmt(notional, MONEY),
        "isolatedWallet": "0",
        "updateTime": pos.update_time,
    }


# --- user data stream events --------------------------------------------------------------------


def order_trade_update(spec: SymbolSpec, o: Order, execution: str, trade: Trade | None, now_ms: int) -> Json:
    """ORDER_TRADE_UPDATE. `N`/`n` (commission) are present only when the event carries a commission."""
    p, q = spec.price_places, spec.qty_places
    body: Json = {
        "s": o.symbol,
        "c": o.client_order_id,
        "S": o.side,
        "o": o.type,
        "f": o.time_in_force,
        "q": fmt(o.orig_qty, q),
        "p": fmt(o.price, p),
        "ap": fmt(o.avg_price, p + 3),
        "sp": fmt(ZERO, p),
        "x": execution,
        "X": o.status,
        "i": o.order_id,
        "l": fmt(trade.qty if trade else ZERO, q),
        "z": fmt(o.executed_qty, q),
        "L": fmt(trade.price if trade else ZERO, p),
    }
    if trade is not None:
        body["N"] = trade.commission_asset
        body["n"] = fmt(trade.commission, MONEY)
    body.update(
        {
            "T": trade.time if trade else o.update_time,
            "t": trade.id if trade else 0,
            "b": "0",
            "a": "0",
            "m": trade.maker if trade else False,
            "R": o.reduce_only,
            "wt": o.working_type,
            "ot": o.type,
            "ps": o.position_side,
            "cp": False,
            "rp": fmt(trade.realized_pnl if trade else ZERO, MONEY),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": o.self_trade_prevention,
            "pm": o.price_match,
            "gtd": o.good_till_date,
            "er": "0",
        }
    )
    return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": trade.time if trade else o.update_time, "o": body}


def trade_lite(spec: SymbolSpec, o: Order, trade: Trade, now_ms: int) -> Json:
    p, q = spec.price_places, spec.qty_places
    return {
        "e": "TRADE_LITE",
        "E": now_ms,
        "T": trade.time,
        "s": o.symbol,
        "q": fmt(o.orig_qty, q),
        "p": fmt(o.price, p),
        "m": trade.maker,
        "c": o.client_order_id,
        "S": o.side,
        "L": fmt(trade.price, p),
        "l": fmt(trade.qty, q),
        "t": trade.id,
        "i": o.order_id,
    }


def account_update(reason: str, account: Account, positions: list[tuple[SymbolSpec, Position]],
                   balance_change: Decimal, marks: dict[str, Decimal], now_ms: int) -> Json:
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "a": {
            "m": reason,
            "B": [
                {
                    "a": "USDT",
                    "wb": fmt(account.balance, MONEY),
                    "cw": fmt(account.balance, MONEY),
                    "bc": fmt(balance_change, MONEY),
                }
            ],
            "P": [
                {
                    "s": pos.symbol,
                    "pa": fmt(pos.amount, spec.qty_places),
                    "ep": fmt(pos.entry_price, spec.price_places + 5),
                    "bep": fmt(pos.breakeven_price, spec.price_places + 6),
                    "cr": fmt(pos.accumulated_realized, MONEY),
                    "up": fmt(pos.unrealized(marks.get(pos.symbol, ZERO)), MONEY),
                    "mt": "cross" if account.margin_type_of(pos.symbol) == "CROSSED" else "isolated",
                    "iw": "0",
                    "ps": pos.side,
                    "ma": spec.quote_asset,
                }
                for spec, pos in positions
            ],
        },
    }


def account_config_update(symbol: str, leverage: int, now_ms: int) -> Json:
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": now_ms, "T": now_ms, "ac": {"s": symbol, "l": leverage}}


def listen_key_expired(listen_key: str, now_ms: int) -> Json:
    # Binance documents "E" of this event as a string.
    return {"e": "listenKeyExpired", "E": str(now_ms), "listenKey": listen_key}
