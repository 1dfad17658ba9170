"""Paper exchange metrics (`v7_paper_*`), declared once."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exchange.paper.engine import PaperExchange
from exchange.stream_server import StreamServer


class PaperMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("v7_paper_rpc_requests", "Adapter calls answered, by op and outcome.",
                                ["op", "outcome"], registry=registry)
        self.request_seconds = Histogram("v7_paper_rpc_seconds", "Time to answer one adapter call.",
                                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5),
                                         registry=registry)

    def watch(self, registry: CollectorRegistry, engine: PaperExchange) -> None:
        registry.register(_EngineCollector(engine))

    def watch_streams(self, registry: CollectorRegistry, streams: StreamServer) -> None:
        registry.register(_StreamCollector(streams))


class _StreamCollector(Collector):
    def __init__(self, streams: StreamServer) -> None:
        self._streams = streams

    def collect(self) -> Iterable[Metric]:
        events = CounterMetricFamily("v7_exchange_stream_events", "Events published, by stream.", labels=["stream"])
        seq = GaugeMetricFamily("v7_exchange_stream_seq", "Last sequence published, by stream.", labels=["stream"])
        for stream, n in sorted(self._streams.published.items()):
            events.add_metric([stream], n)
            seq.add_metric([stream], self._streams.seqs[stream])
        yield events
        yield seq


class _EngineCollector(Collector):
    """Reads the engine at scrape time. Values may be a tick old; the engine is not locked here."""

    def __init__(self, engine: PaperExchange) -> None:
        self._engine = engine

    def collect(self) -> Iterable[Metric]:
        e = self._engine
        placed = CounterMetricFamily("v7_paper_orders", "Orders accepted by the paper exchange.")
        placed.add_metric([], e.stats.orders_placed)
        yield placed
        rejects = CounterMetricFamily("v7_paper_rejects", "Orders rejected, by reason.", labels=["reason"])
        for reason, n in sorted(e.stats.rejects.items()):
            rejects.add_metric([reason], n)
        yield rejects
        fills = CounterMetricFamily("v7_paper_fills", "Trades executed, by liquidity.", labels=["liquidity"])
        for liquidity, n in sorted(e.stats.fills.items()):
            fills.add_metric([liquidity], n)
        yield fills
        yield CounterMetricFamily("v7_paper_fill_notional", "Quote value traded.", value=e.stats.fill_notional)
        mark = GaugeMetricFamily("v7_paper_mark_price", "Mark price by symbol.", labels=["symbol"])
        vol = GaugeMetricFamily("v7_paper_vol_multiplier", "Volatility regime multiplier by symbol.",
                                labels=["symbol"])
        for symbol, market in list(e.market.markets.items()):
            if market.top is not None:
                mark.add_metric([symbol], market.top.mark)
            vol.add_metric([symbol], market.vol_multiplier)
        yield mark
        yield vol
        yield GaugeMetricFamily("v7_paper_open_orders", "Resting orders.", value=e.open_order_count)
        yield GaugeMetricFamily("v7_paper_positions", "Open positions.", value=len(e.positions))
        yield GaugeMetricFamily("v7_paper_wallet_balance", "Wallet balance (quote).", value=e.wallet_balance)
