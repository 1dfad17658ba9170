"""User-data stream events -> account events, in the paper engine's order.

Per fill the paper engine pushes TradeExecuted, OrderChanged, PositionChanged, BalanceChanged.
Binance sends TRADE_LITE, then ORDER_TRADE_UPDATE and ACCOUNT_UPDATE in either order (it orders
events only within one type). TRADE_LITE announces the trade first, so an ACCOUNT_UPDATE that
arrives while an announced trade's ORDER_TRADE_UPDATE has not is held (at most `hold_s`) and
released right after it: positions always follow the fill that moved them.

- ORDER_TRADE_UPDATE x=TRADE: TradeExecuted with the last-fill quantity `l` (never the
  cumulative `z`), once per trade id; then OrderChanged with the cumulative state.
- other executions (NEW, CANCELED, EXPIRED, AMENDMENT, CALCULATED): OrderChanged.
- ACCOUNT_UPDATE: PositionChanged per one-way position in it, then BalanceChanged.
- ACCOUNT_CONFIG_UPDATE: the symbol's leverage (no event).
- listenKeyExpired is the stream's business (user_stream.py), not translated here.

Stream thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from exchange.binance_usdm.account_state import AccountState
from exchange.binance_usdm.memory import OrderMemory, TradeLedger
from exchange.binance_usdm.payloads import fill_from_stream, num, order_from_stream
from exchange.streams import BalanceChanged, OrderChanged, PositionChanged, TradeExecuted

Json = dict[str, Any]
AccountEvent = OrderChanged | TradeExecuted | PositionChanged | BalanceChanged


class UserEventTranslator:
    def __init__(self, account: AccountState, memory: OrderMemory, ledger: TradeLedger, hold_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.account = account
        self.memory = memory
        self.ledger = ledger
        self.hold_s = hold_s
        self.clock = clock
        self._announced: dict[tuple[str, int], float] = {}  # TRADE_LITE seen, its ORDER_TRADE_UPDATE not yet
        self._held: list[tuple[float, Json]] = []  # (deadline, ACCOUNT_UPDATE event)
        self.duplicates = 0

    def translate(self, event: Json) -> list[AccountEvent]:
        kind = event.get("e")
        if kind == "ORDER_TRADE_UPDATE":
            return self._order_update(event["o"])
        if kind == "ACCOUNT_UPDATE":
            if self._announced and self.hold_s > 0:
                self._held.append((self.clock() + self.hold_s, event))
                return []
            return [*self.release(), *self.account.apply(event.get("a", {}), event.get("E", 0))]
        if kind == "TRADE_LITE":
            if f"{event['s']}-{event['t']}" not in self.ledger:  # its ORDER_TRADE_UPDATE may have come first
                self._announced[(event["s"], int(event["t"]))] = self.clock() + self.hold_s
            return []
        if kind == "ACCOUNT_CONFIG_UPDATE":
            config = event.get("ac") or {}
            if "s" in config and "l" in config:
                self.account.set_leverage(config["s"], num(config["l"]))
        return []

    def _order_update(self, o: Json) -> list[AccountEvent]:
        events: list[AccountEvent] = []
        if o.get("x") == "TRADE":
            fill = fill_from_stream(o)
            self._announced.pop((o["s"], int(o["t"])), None)
            if self.ledger.add(fill):
                self.account.on_fill(fill)
                events.append(TradeExecuted(fill=fill))
            else:
                self.duplicates += 1
        order = order_from_stream(o, self.memory.created_at(o["c"], str(o["i"])))
        self.memory.remember(order, pushed=True)
        events.append(OrderChanged(order=order))
        if not self._announced:
            events.extend(self.release())
        return events

    def next_deadline(self) -> float | None:
        """When `release_due` should run next (None: nothing is held)."""
        deadlines = [d for d, _ in self._held] + list(self._announced.values())
        return min(deadlines) if deadlines else None

    def release_due(self) -> list[AccountEvent]:
        """Give up waiting for announced trades whose hold has passed; release what they held."""
        now = self.clock()
        self._announced = {k: d for k, d in self._announced.items() if d > now}
        if self._held and (not self._announced or self._held[0][0] <= now):
            return self.release()
        return []

    def release(self) -> list[AccountEvent]:
        """Every held ACCOUNT_UPDATE, in arrival order."""
        events: list[AccountEvent] = []
        held, self._held = self._held, []
        for _, event in held:
            events.extend(self.account.apply(event.get("a", {}), event.get("E", 0)))
        return events

    def reset(self) -> None:
        """A new connection: nothing announced on the old one will be answered on it."""
        self._announced.clear()
        self._held.clear()
