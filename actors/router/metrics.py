"""Router metrics (`v7_router_*`), declared once with fixed label sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.intents = Counter("v7_router_intents", "Intents taken up, by purpose.", ["purpose"], registry=registry)
        self.intents_done = Counter("v7_router_intents_done", "Intents finished, by outcome.", ["status"],
                                    registry=registry)
        self.orders = Counter("v7_router_orders", "Child orders placed, by type.", ["order_type"], registry=registry)
        self.fills = Counter("v7_router_fills", "Fills sent to the hub, by liquidity.", ["liquidity"],
                             registry=registry)
        self.rejects = Counter("v7_router_rejects", "Exchange rejects, by reason.", ["reason"], registry=registry)
        self.slippage = Histogram("v7_router_slippage_bps", "OrderFilled slippage vs arrival mid (bps, + = cost).",
                                  buckets=(-20, -10, -5, -2, -1, 0, 1, 2, 5, 10, 20, 50), registry=registry)
        self.active = Gauge("v7_router_active_intents", "Intents being worked.", registry=registry)
        self.maker_share = Gauge("v7_router_maker_fill_share", "Maker share of filled notional (window).",
                                 registry=registry)
        self.reject_rate = Gauge("v7_router_reject_rate", "Rejected share of placements (window).",
                                 registry=registry)
        self.exchange_errors = Counter("v7_router_exchange_unavailable", "Loops cut short: exchange not answering.",
                                       registry=registry)
