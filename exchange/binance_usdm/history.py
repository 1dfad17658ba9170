"""Reading the account's trades and orders back: userTrades paged by trade id, each trade given
its client order id (userTrades rows carry none; OrderMemory or one order lookup supplies it).

Used by the request path (fetch_fills, fills of an order) and by the stream thread (fills made
while the user stream was down), each with its own `BinanceRest`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exchange.adapter import ExchangeFill, Order
from exchange.binance_usdm.memory import OrderMemory
from exchange.binance_usdm.payloads import fill_from_user_trade, order_from_rest
from exchange.binance_usdm.rest import BinanceRest

Json = dict[str, Any]
PAGE = 1000  # userTrades / allOrders maximum per request
WEEK_MS = 7 * 86_400_000  # userTrades answers at most seven days per request


class History:
    def __init__(self, rest: BinanceRest, memory: OrderMemory) -> None:
        self.rest = rest
        self.memory = memory

    def trades(self, symbol: str, *, start_ms: int | None = None, from_id: int | None = None,
               order_id: str | None = None, max_rows: int = 10_000) -> list[Json]:
        """userTrades rows oldest first: from trade id `from_id`, or from time `start_ms`, or of one order."""
        rows: list[Json] = []
        params: dict[str, Any] = {"symbol": symbol, "limit": PAGE}
        if order_id is not None:
            params["orderId"] = order_id
        if from_id is not None:
            params["fromId"] = from_id
        elif start_ms is not None:
            params["startTime"] = start_ms
        now_ms = self.rest.clock.now_ms()
        while len(rows) < max_rows:
            page = self.rest.request("fapiPrivateGetUserTrades", params)
            rows.extend(page)
            if len(page) >= PAGE:  # a full page: the next one starts after its last trade
                params = {"symbol": symbol, "limit": PAGE, "fromId": int(page[-1]["id"]) + 1}
                if order_id is not None:
                    params["orderId"] = order_id
                continue
            start = params.get("startTime")
            if start is not None and start + WEEK_MS < now_ms:  # that week is done: the next one
                params = {**params, "startTime": start + WEEK_MS}
                continue
            break
        unique = {int(r["id"]): r for r in rows}
        return [unique[k] for k in sorted(unique)][:max_rows]

    def order_by_id(self, symbol: str, order_id: str) -> Order:
        order = order_from_rest(self.rest.request("fapiPrivateGetOrder", {"symbol": symbol, "orderId": order_id}))
        self.memory.remember(order)
        return order

    def fills(self, rows: Iterable[Json], orders: dict[str, Order] | None = None) -> list[ExchangeFill]:
        """userTrades rows as fills; the client order id from `orders` (by order id), memory, or a lookup."""
        out: list[ExchangeFill] = []
        for row in rows:
            symbol, order_id = row["symbol"], str(row["orderId"])
            known_order = (orders or {}).get(order_id)
            if known_order is not None:
                cid, reduce_only = known_order.client_order_id, known_order.reduce_only
            else:
                known = self.memory.by_order_id(symbol, order_id)
                if known is None:
                    looked_up = self.order_by_id(symbol, order_id)
                    cid, reduce_only = looked_up.client_order_id, looked_up.reduce_only
                else:
                    cid, reduce_only = known.client_order_id, known.reduce_only
            out.append(fill_from_user_trade(row, cid, reduce_only))
        return out

    def all_orders(self, symbol: str, start_ms: int | None = None) -> list[Order]:
        """GET /fapi/v1/allOrders (the newest 1000, or 1000 from `start_ms`), oldest first."""
        params: dict[str, Any] = {"symbol": symbol, "limit": PAGE}
        if start_ms is not None:
            params["startTime"] = start_ms
        orders = [order_from_rest(row) for row in self.rest.request("fapiPrivateGetAllOrders", params)]
        for order in orders:
            self.memory.remember(order)
        return orders
