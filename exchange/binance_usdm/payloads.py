"""Binance USDⓈ-M JSON (REST answers and stream events) read into the adapter's models. Pure.

Binance sends numbers as strings and times as epoch milliseconds. Trade ids are per symbol on
Binance, so a fill's `trade_id` is "<symbol>-<id>": unique per account, as the interface wants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.vocabulary import OrderStatus
from exchange.adapter import Balance, Bar, BookTop, ExchangeFill, ExchangePosition, Order

Json = dict[str, Any]

# Binance order statuses beyond ours: NEW_INSURANCE / NEW_ADL are liquidation orders (filled by the
# insurance fund or ADL), shown as FILLED once done.
_STATUS: dict[str, OrderStatus] = {
    "NEW": "NEW", "PARTIALLY_FILLED": "PARTIALLY_FILLED", "FILLED": "FILLED", "CANCELED": "CANCELED",
    "REJECTED": "REJECTED", "EXPIRED": "EXPIRED", "EXPIRED_IN_MATCH": "EXPIRED", "NEW_INSURANCE": "FILLED",
    "NEW_ADL": "FILLED",
}
REDUCE_ONLY_EXPIRED = "reduce_only_no_position"


def dt(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000.0, UTC)


def num(value: Any) -> float:
    return float(value) if value not in (None, "") else 0.0


def trade_id(symbol: str, raw_id: Any) -> str:
    return f"{symbol}-{raw_id}"


def order_status(raw: str) -> OrderStatus:
    return _STATUS.get(raw, "NEW")


def _reason(status: str, reduce_only: bool, executed: float, orig: float) -> str:
    # Binance expires a reduce-only order it cannot apply (the position is gone): say so, as the
    # paper engine's "reduce_only_no_position" does.
    if status in ("EXPIRED", "EXPIRED_IN_MATCH") and reduce_only and executed < orig:
        return REDUCE_ONLY_EXPIRED
    return {"CANCELED": "canceled", "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired_in_match",
            "REJECTED": "rejected"}.get(status, "")


def order_from_rest(body: Json, fills: list[ExchangeFill] | None = None) -> Order:
    """GET/POST/DELETE /fapi/v1/order (and openOrders, allOrders rows)."""
    orig = num(body.get("origQty"))
    executed = num(body.get("executedQty"))
    order_type = "MARKET" if body.get("type") == "MARKET" else "LIMIT"
    price = num(body.get("price"))
    avg = num(body.get("avgPrice"))
    created = body.get("time") or body.get("updateTime")
    reduce_only = bool(body.get("reduceOnly", False))
    return Order(
        order_id=str(body["orderId"]), client_order_id=body["clientOrderId"], symbol=body["symbol"],
        side=body["side"], order_type=order_type, status=order_status(body["status"]), qty=orig,
        price=price if order_type == "LIMIT" and price > 0 else None, filled_qty=executed,
        avg_price=avg if executed > 0 and avg > 0 else None, post_only=body.get("timeInForce") == "GTX",
        reduce_only=reduce_only, reason=_reason(body["status"], reduce_only, executed, orig),
        created_at=dt(created), updated_at=dt(body.get("updateTime") or created), fills=list(fills or []),
    )


def fill_from_user_trade(row: Json, client_order_id: str, reduce_only: bool) -> ExchangeFill:
    """One row of GET /fapi/v1/userTrades (which carries no client order id: the caller knows it)."""
    symbol = row["symbol"]
    return ExchangeFill(
        trade_id=trade_id(symbol, row["id"]), order_id=str(row["orderId"]), client_order_id=client_order_id,
        symbol=symbol, side=row["side"], qty=num(row["qty"]), price=num(row["price"]),
        fee=max(0.0, num(row.get("commission"))), fee_asset=row.get("commissionAsset") or "USDT",
        liquidity="maker" if row.get("maker") else "taker", realized_pnl=num(row.get("realizedPnl")),
        reduce_only=reduce_only, ts=dt(row["time"]),
    )


def order_from_stream(o: Json, created_at: datetime | None) -> Order:
    """ORDER_TRADE_UPDATE's "o" object as an order (without fills: those are TradeExecuted)."""
    orig = num(o.get("q"))
    executed = num(o.get("z"))
    order_type = "MARKET" if o.get("o") == "MARKET" else "LIMIT"
    price = num(o.get("p"))
    avg = num(o.get("ap"))
    updated = dt(o["T"])
    reduce_only = bool(o.get("R", False))
    return Order(
        order_id=str(o["i"]), client_order_id=o["c"], symbol=o["s"], side=o["S"], order_type=order_type,
        status=order_status(o["X"]), qty=orig, price=price if order_type == "LIMIT" and price > 0 else None,
        filled_qty=executed, avg_price=avg if executed > 0 and avg > 0 else None, post_only=o.get("f") == "GTX",
        reduce_only=reduce_only, reason=_reason(o["X"], reduce_only, executed, orig),
        created_at=created_at or updated, updated_at=updated,
    )


def fill_from_stream(o: Json) -> ExchangeFill:
    """The trade of an ORDER_TRADE_UPDATE with x=TRADE: `l` is this fill's quantity (`z` is cumulative)."""
    symbol = o["s"]
    return ExchangeFill(
        trade_id=trade_id(symbol, o["t"]), order_id=str(o["i"]), client_order_id=o["c"], symbol=symbol,
        side=o["S"], qty=num(o["l"]), price=num(o["L"]), fee=max(0.0, num(o.get("n"))),
        fee_asset=o.get("N") or "USDT", liquidity="maker" if o.get("m") else "taker",
        realized_pnl=num(o.get("rp")), reduce_only=bool(o.get("R", False)), ts=dt(o["T"]),
    )


def position_from_risk(row: Json, leverage: float, opened_at: datetime | None = None,
                       realized_pnl: float = 0.0) -> ExchangePosition | None:
    """One row of GET /fapi/v3/positionRisk (one-way mode: positionSide BOTH); None when flat."""
    amount = num(row.get("positionAmt"))
    if amount == 0.0:
        return None
    qty = abs(amount)
    mark = num(row.get("markPrice"))
    entry = num(row.get("entryPrice")) or mark  # never seen 0 with a position, but the model needs > 0
    mark = mark or entry
    if entry <= 0:
        return None
    margin = num(row.get("positionInitialMargin")) or qty * mark / leverage
    return ExchangePosition(
        symbol=row["symbol"], side="LONG" if amount > 0 else "SHORT", qty=qty, entry_price=entry, mark_price=mark,
        unrealized_pnl=num(row.get("unRealizedProfit")), realized_pnl=realized_pnl, leverage=leverage,
        margin=margin, opened_at=opened_at, updated_at=dt(row.get("updateTime") or 0),
    )


def balance_from_account(body: Json, asset: str = "USDT") -> Balance:
    """GET /fapi/v3/account: the quote asset's row, or the account totals without one. `ts` is when it
    was read (the row's updateTime is when the wallet last changed, which may be long ago)."""
    row = next((a for a in body.get("assets", []) if a.get("asset") == asset), None)
    if row is not None:
        return Balance(
            asset=asset, wallet_balance=num(row.get("walletBalance")),
            unrealized_pnl=num(row.get("unrealizedProfit")), margin_balance=num(row.get("marginBalance")),
            position_margin=max(0.0, num(row.get("positionInitialMargin"))),
            order_margin=max(0.0, num(row.get("openOrderInitialMargin"))),
            available_balance=num(row.get("availableBalance")), ts=datetime.now(UTC),  # when read, as the paper's
        )
    return Balance(
        asset=asset, wallet_balance=num(body.get("totalWalletBalance")),
        unrealized_pnl=num(body.get("totalUnrealizedProfit")), margin_balance=num(body.get("totalMarginBalance")),
        position_margin=max(0.0, num(body.get("totalPositionInitialMargin"))),
        order_margin=max(0.0, num(body.get("totalOpenOrderInitialMargin"))),
        available_balance=num(body.get("availableBalance")), ts=datetime.now(UTC),
    )


def book_top(symbol: str, bid: Any, bid_qty: Any, ask: Any, ask_qty: Any, mark: float, ts_ms: Any) -> BookTop | None:
    """A top of book, or None for one that cannot be traded on (empty or crossed side)."""
    b, a = num(bid), num(ask)
    if b <= 0 or a <= 0 or a <= b or mark <= 0:
        return None
    return BookTop(symbol=symbol, bid=b, ask=a, bid_qty=max(0.0, num(bid_qty)), ask_qty=max(0.0, num(ask_qty)),
                   mark=mark, ts=dt(ts_ms))


def bar_from_kline_row(row: list[Any]) -> Bar:
    """A GET /fapi/v1/klines row: [openTime, open, high, low, close, volume, closeTime, ...]."""
    return Bar(ts=dt(row[0]), open=num(row[1]), high=num(row[2]), low=num(row[3]), close=num(row[4]))


def bar_from_kline_event(k: Json) -> Bar:
    return Bar(ts=dt(k["t"]), open=num(k["o"]), high=num(k["h"]), low=num(k["l"]), close=num(k["c"]))


def fill_order(fill: ExchangeFill) -> tuple[datetime, str, int]:
    """Sort key of fills: time, then symbol and Binance's trade id (numeric, not as text)."""
    raw = fill.trade_id.rsplit("-", 1)[-1]
    return fill.ts, fill.symbol, int(raw) if raw.isdigit() else 0
