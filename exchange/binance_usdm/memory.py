"""What the adapter remembers between calls: its orders (client id <-> Binance order id) and the
trades it has pushed (de-duplication by trade id).

Binance's userTrades rows carry no client order id, and ORDER_TRADE_UPDATE carries no creation
time: `OrderMemory` fills both in from whatever saw the order first (a place answer, a stream
event, a lookup). Thread-safe: the request path writes it, the stream thread reads and writes it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from exchange.adapter import ExchangeFill, Order

MAX_ORDERS_KEPT = 20_000
MAX_TRADES_KEPT = 100_000


@dataclass(frozen=True, slots=True)
class KnownOrder:
    client_order_id: str
    order_id: str
    symbol: str
    reduce_only: bool
    created_at: datetime
    is_open: bool  # as last seen anywhere (an answer or an event)
    pushed_open: bool = False  # as last pushed to the sink: a resync re-reads what a consumer thinks open


class OrderMemory:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_client: OrderedDict[str, KnownOrder] = OrderedDict()
        self._by_id: dict[tuple[str, str], str] = {}
        self._sent: set[str] = set()

    def remember(self, order: Order, *, pushed: bool = False) -> None:
        """Record an order as an answer or an event showed it (`pushed`: as the sink was told)."""
        with self._lock:
            known = self._by_client.get(order.client_order_id)
            same = known is not None and known.order_id == order.order_id
            created = known.created_at if same and known else order.created_at
            pushed_open = order.is_open if pushed else (known.pushed_open if same and known else False)
            self._by_client[order.client_order_id] = KnownOrder(
                order.client_order_id, order.order_id, order.symbol, order.reduce_only, created, order.is_open,
                pushed_open)
            self._by_client.move_to_end(order.client_order_id)
            self._by_id[(order.symbol, order.order_id)] = order.client_order_id
            while len(self._by_client) > MAX_ORDERS_KEPT:
                cid, old = self._by_client.popitem(last=False)
                self._by_id.pop((old.symbol, old.order_id), None)
                self._sent.discard(cid)

    def mark_sent(self, client_order_id: str) -> bool:
        """Record that a place request for this id is going out; False if one went out before."""
        with self._lock:
            if client_order_id in self._sent:
                return False
            self._sent.add(client_order_id)
            return True

    def get(self, client_order_id: str) -> KnownOrder | None:
        with self._lock:
            return self._by_client.get(client_order_id)

    def by_order_id(self, symbol: str, order_id: str) -> KnownOrder | None:
        with self._lock:
            cid = self._by_id.get((symbol, order_id))
            return self._by_client.get(cid) if cid is not None else None

    def created_at(self, client_order_id: str, order_id: str) -> datetime | None:
        with self._lock:
            known = self._by_client.get(client_order_id)
            return known.created_at if known is not None and known.order_id == order_id else None

    def forget(self, symbol: str, order_id: str) -> None:
        """The venue no longer has the order (purged): stop asking about it."""
        with self._lock:
            cid = self._by_id.pop((symbol, order_id), None)
            if cid is not None:
                self._by_client.pop(cid, None)

    def open_orders(self) -> list[KnownOrder]:
        """Orders open as last seen, or as last pushed (a consumer still thinks them open)."""
        with self._lock:
            return [k for k in self._by_client.values() if k.is_open or k.pushed_open]


class TradeLedger:
    """Trade ids already pushed, and per symbol the highest Binance trade id seen (where a
    userTrades read after a reconnect starts). Used from the stream thread only."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.last_id: dict[str, int] = {}

    def add(self, fill: ExchangeFill) -> bool:
        """True if this trade is new (push it); False if it was pushed before."""
        if fill.trade_id in self._seen:
            return False
        self._seen[fill.trade_id] = None
        while len(self._seen) > MAX_TRADES_KEPT:
            self._seen.popitem(last=False)
        raw = fill.trade_id.rsplit("-", 1)[-1]
        if raw.isdigit():
            self.last_id[fill.symbol] = max(self.last_id.get(fill.symbol, 0), int(raw))
        return True

    def __contains__(self, trade_id: str) -> bool:
        return trade_id in self._seen
