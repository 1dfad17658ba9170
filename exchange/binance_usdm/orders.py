"""Placing, cancelling and reading orders by client order id, never placing one id twice.

Placing (`place`):
1. the symbol's filters: price rounded to the tick, quantity floored to the step, below the
   minimum quantity or notional refused locally (nothing is sent);
2. an id this process sent before (or, with `verify_new_ids`, any id) is looked up first: if
   the venue has it, that order is the answer (placing is idempotent on the id);
3. POST /fapi/v1/order (newOrderRespType RESULT: the order as it stands after matching);
4. no clear answer (timeout, connection lost, 5xx, -1000/-1001/-1006/-1007/-1008): the order
   is looked up by its client id before anything else. Found: that is the answer. Not found:
   the lookup is repeated once the request's recvWindow has passed (after it the venue refuses
   the request if it is still in flight, -1021/-5028), and only a second "not found" lets the
   same id go once more. Lookups that keep failing raise ExchangeUnavailable (outcome unknown);
5. -4116 (the id is an open order already): that order is the answer; -2022: the position is
   read to say why (already flat, or the wrong side) as OrderRejected("reduce_only_rejected").

Every order returned carries its fills (userTrades of the order), as the paper engine's do: a
caller counts fills, never trusts a status alone. If the trades do not yet add up to the
executed quantity after a few reads, ExchangeUnavailable says "look again".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from exchange.adapter import Order, OrderRequest
from exchange.binance_usdm.errors import (
    DUPLICATE_CLIENT_ID,
    ORDER_NOT_FOUND,
    REDUCE_ONLY_REJECTED,
    OrderThrottled,
    VenueFailure,
    VenueThrottled,
    to_error,
)
from exchange.binance_usdm.filters import SymbolRules, fmt
from exchange.binance_usdm.history import History
from exchange.binance_usdm.memory import OrderMemory
from exchange.binance_usdm.payloads import order_from_rest, position_from_risk
from exchange.binance_usdm.rest import BinanceRest, RequestFailed
from exchange.errors import ExchangeError, ExchangeUnavailable, OrderNotFound, OrderRejected

log = logging.getLogger(__name__)

SETTLE_MARGIN_S = 1.0  # beyond recvWindow: the venue's clock may run a little behind ours
FILLS_RETRY_S = 0.05


class OrderDesk:
    def __init__(self, rest: BinanceRest, memory: OrderMemory, rules: Callable[[str], SymbolRules],
                 reference_price: Callable[[str, str], float | None], *, recv_window_ms: int,
                 verify_new_ids: bool, lookup_attempts: int, lookup_backoff_s: float, fills_settle_attempts: int,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rest = rest
        self.memory = memory
        self.history = History(rest, memory)
        self.rules = rules
        self.reference_price = reference_price
        self.settle_s = recv_window_ms / 1000.0 + SETTLE_MARGIN_S
        self.verify_new_ids = verify_new_ids
        self.lookup_attempts = lookup_attempts
        self.lookup_backoff_s = lookup_backoff_s
        self.fills_settle_attempts = fills_settle_attempts
        self.sleep = sleep
        self.monotonic = monotonic
        self.unknown_outcomes = 0
        self.resent = 0

    # --- placing ----------------------------------------------------------------------------------

    def place(self, request: OrderRequest) -> Order:
        rules = self.rules(request.symbol)
        cid = request.client_order_id
        first_time = self.memory.mark_sent(cid)
        if not first_time or self.verify_new_ids:
            try:
                existing = self.find(request.symbol, cid)
            except VenueThrottled as exc:  # nothing was sent, let alone placed: a refused order
                raise OrderThrottled("ip_banned" if exc.code == "ip_banned" else "overloaded", exc.detail,
                                     exc.retry_at) from None
            if existing is not None:
                return existing
        params = self._params(request, rules)
        for attempt in range(2):
            sent_at = self.monotonic()
            try:
                body = self.rest.send("fapiPrivatePostOrder", params, placing=True)
            except RequestFailed as exc:
                failure = exc.failure
                if failure.code == DUPLICATE_CLIENT_ID:
                    existing = self.find(request.symbol, cid)
                    if existing is None:
                        raise ExchangeUnavailable("order_outcome_unknown",
                                                  f"{cid}: -4116 duplicate id, yet no order found") from None
                    return existing
                if failure.code == REDUCE_ONLY_REJECTED:
                    raise self._reduce_only_rejected(request, failure) from None
                if not failure.outcome_unknown:
                    raise to_error(failure, placing=True) from None
                self.unknown_outcomes += 1
                log.warning("placing %s %s: %s; looking the order up before anything else",
                            request.symbol, cid, failure.describe())
                found = self._resolve(request, sent_at, failure)
                if found is not None:
                    return found
                if attempt == 0:
                    self.resent += 1
                    log.warning("placing %s %s: the venue does not have it after its recvWindow; sending it again",
                                request.symbol, cid)
                    continue
                raise OrderRejected("overloaded", f"{cid}: the venue took neither attempt ({failure.describe()}); "
                                                  "nothing was placed") from None
            return self._answer(order_from_rest(body))
        raise AssertionError("unreachable")

    def _params(self, request: OrderRequest, rules: SymbolRules) -> dict[str, Any]:
        qty = rules.qty(request.qty, request.order_type)
        price = rules.price(request.price, request.side, request.post_only) if request.price is not None else None
        reference = None if price is not None else self.reference_price(request.symbol, request.side)
        refusal = rules.refuse(qty, price, request.order_type, request.reduce_only, reference)
        if refusal is not None:
            raise refusal
        params: dict[str, Any] = {
            "symbol": request.symbol, "side": request.side, "type": request.order_type, "quantity": fmt(qty),
            "newClientOrderId": request.client_order_id, "newOrderRespType": "RESULT",
        }
        if price is not None:
            params["price"] = fmt(price)
            params["timeInForce"] = "GTX" if request.post_only else "GTC"
        if request.reduce_only:
            params["reduceOnly"] = "true"
        return params

    def _resolve(self, request: OrderRequest, sent_at: float, failure: VenueFailure) -> Order | None:
        """The order placed by an unanswered request, or None once it is certain there is none."""
        final_at = sent_at + self.settle_s
        failures = 0
        while True:
            try:
                found = self.find(request.symbol, request.client_order_id)
            except ExchangeError as exc:
                if isinstance(exc, OrderRejected | OrderNotFound):
                    raise
                failures += 1
                if failures >= self.lookup_attempts:
                    raise ExchangeUnavailable(
                        "order_outcome_unknown",
                        f"{request.client_order_id}: {failure.describe()}; {failures} lookups failed ({exc.code}); "
                        "look it up again before placing") from None
                self.sleep(self.lookup_backoff_s * failures)
                continue
            if found is not None:
                log.info("placing %s %s: found on the venue (%s)", request.symbol, request.client_order_id,
                         found.status)
                return found
            wait = final_at - self.monotonic()
            if wait <= 0:
                return None
            self.sleep(wait)

    def _reduce_only_rejected(self, request: OrderRequest, failure: VenueFailure) -> OrderRejected:
        """-2022, explained by the position (one read of positionRisk)."""
        try:
            rows = self.rest.request("fapiPrivateV3GetPositionRisk", {"symbol": request.symbol})
        except ExchangeError as exc:
            return OrderRejected("reduce_only_rejected", f"{failure.describe()}; position unknown ({exc.code})")
        position = next((p for row in rows if row.get("positionSide", "BOTH") == "BOTH"
                         and (p := position_from_risk(row, leverage=1.0)) is not None), None)
        if position is None:
            return OrderRejected("reduce_only_rejected", f"{request.symbol} is already flat: nothing to reduce "
                                                         f"({failure.describe()})")
        if (position.side == "LONG") == (request.side == "BUY"):
            return OrderRejected("reduce_only_rejected", f"{request.symbol} is {position.side} {position.qty:g}: a "
                                                         f"{request.side} cannot reduce it ({failure.describe()})")
        return OrderRejected("reduce_only_rejected", f"{request.symbol} is {position.side} {position.qty:g}; the "
                                                     f"venue refused the reduce-only {request.side} "
                                                     f"({failure.describe()})")

    # --- reading and cancelling -------------------------------------------------------------------

    def find(self, symbol: str, client_order_id: str) -> Order | None:
        """The order with its fills, or None if the venue never had it."""
        try:
            body = self.rest.request("fapiPrivateGetOrder", {"symbol": symbol, "origClientOrderId": client_order_id})
        except OrderNotFound:
            return None
        return self._answer(order_from_rest(body))

    def fetch(self, symbol: str, client_order_id: str) -> Order:
        self.rules(symbol)
        order = self.find(symbol, client_order_id)
        if order is None:
            raise OrderNotFound("unknown_order", f"{symbol} {client_order_id}")
        return order

    def cancel(self, symbol: str, client_order_id: str) -> Order:
        """Cancel if open; a finished order is returned as it is; OrderNotFound if never placed."""
        self.rules(symbol)
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        for _attempt in range(2):
            try:
                return self._answer(order_from_rest(self.rest.send("fapiPrivateDeleteOrder", params)))
            except RequestFailed as exc:
                failure = exc.failure
                if failure.code not in ORDER_NOT_FOUND and not failure.outcome_unknown:
                    raise to_error(failure) from None
                # -2011: unknown, or no longer open. No answer: it may have been cancelled. Either way: look.
                order = self.find(symbol, client_order_id)
                if order is None:
                    raise OrderNotFound("unknown_order", f"{symbol} {client_order_id}") from None
                if not order.is_open:
                    return order
                # Still open (the cancel was lost, or raced a fill): send it once more.
        raise ExchangeUnavailable("venue_unavailable", f"cancel {symbol} {client_order_id}: no answer twice")

    def fetch_orders(self, symbol: str, prefix: str, open_only: bool) -> list[Order]:
        self.rules(symbol)
        if open_only:
            rows = self.rest.request("fapiPrivateGetOpenOrders", {"symbol": symbol})
            orders = [order_from_rest(r) for r in rows]
            for order in orders:
                self.memory.remember(order)
        else:
            orders = self.history.all_orders(symbol)
        matched = [o for o in orders if o.client_order_id.startswith(prefix)]
        filled = [o for o in matched if o.filled_qty > 0]
        if filled:
            start = min(int(o.created_at.timestamp() * 1000) for o in filled)
            rows = self.history.trades(symbol, start_ms=start)
            by_id = {o.order_id: o for o in matched}
            fills = self.history.fills([r for r in rows if str(r["orderId"]) in by_id], by_id)
            matched = [o.model_copy(update={"fills": [f for f in fills if f.order_id == o.order_id]})
                       for o in matched]
        return sorted(matched, key=lambda o: (o.created_at, o.order_id))

    def _answer(self, order: Order) -> Order:
        """The order with all its fills (read until they add up to its executed quantity)."""
        self.memory.remember(order)
        if order.filled_qty <= 0:
            return order
        fills = []
        for attempt in range(self.fills_settle_attempts):
            rows = self.history.trades(order.symbol, order_id=order.order_id)
            fills = self.history.fills(rows, {order.order_id: order})
            if sum(f.qty for f in fills) >= order.filled_qty * (1 - 1e-9):
                return order.model_copy(update={"fills": fills})
            self.sleep(FILLS_RETRY_S * 2 ** attempt)
        raise ExchangeUnavailable("fills_pending", f"{order.client_order_id}: {order.filled_qty:g} executed, trades "
                                                   f"for {sum(f.qty for f in fills):g} so far; look it up again")
