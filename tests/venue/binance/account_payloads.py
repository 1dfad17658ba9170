"""Order, trade, position and balance bodies and the user-data stream events, as Binance sends them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .account import Account, Order, Position, Trade
from .config import SymbolSpec
from .numbers import ZERO, fmt

MONEY = 8
Json = dict[str, Any]


def avg_price(o: Order, places: int) -> str:
    """"0.00" before any fill; else the exact average, at least `places` decimals (Binance: "30092.76666")."""
    if not o.executed_qty:
        return fmt(ZERO, places)
    exact = fmt(o.avg_price, places + 5).rstrip("0")
    whole, _, decimals = exact.partition(".")
    return f"{whole}.{decimals.ljust(places, '0')}" if places else exact.rstrip(".")


# --- orders, trades, positions, balances --------------------------------------------------------


def order(spec: SymbolSpec, o: Order) -> Json:
    p, q = spec.price_places, spec.qty_places
    return {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_order_id,
        "price": fmt(o.price, p),
        "avgPrice": avg_price(o, p),
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
        "ap": avg_price(o, p),
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
