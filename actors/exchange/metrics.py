"""Exchange gateway metrics, declared once: its requests and streams (`v7_exchange_*`), the paper
engine (`v7_paper_*`, SIM and DRY_RUN) and the venue (`v7_venue_*`, DRY_RUN and LIVE)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exchange.paper.engine import PaperExchange
from exchange.stream_server import StreamServer

if TYPE_CHECKING:  # not imported at run time: it brings ccxt, which a SIM gateway never needs
    from exchange.binance_usdm.adapter import BinanceUsdmAdapter


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter("v7_exchange_rpc_requests", "Adapter calls answered, by op and outcome.",
                                ["op", "outcome"], registry=registry)
        self.request_seconds = Histogram("v7_exchange_rpc_seconds", "Time to answer one adapter call.",
                                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 2.5, 10),
                                         registry=registry)

    def watch_engine(self, engine: PaperExchange) -> None:
        self.registry.register(_EngineCollector(engine))

    def watch_streams(self, streams: StreamServer) -> None:
        self.registry.register(_StreamCollector(streams))

    def watch_venue(self, venue: BinanceUsdmAdapter) -> None:
        self.registry.register(_VenueCollector(venue))


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


class _VenueCollector(Collector):
    """The venue adapter's own counters and states, read at scrape time."""

    def __init__(self, venue: BinanceUsdmAdapter) -> None:
        self._venue = venue

    def collect(self) -> Iterable[Metric]:
        v = self._venue
        status = v.stream_status
        yield GaugeMetricFamily("v7_venue_banned", "1 while the venue bans this IP (HTTP 418): no new orders.",
                                value=1 if v.banned else 0)
        yield GaugeMetricFamily("v7_venue_time_offset_ms", "Venue server time minus local time.",
                                value=v.time_offset_ms)
        used = GaugeMetricFamily("v7_venue_used_weight", "Request weight used this minute (from the venue's headers).")
        used.add_metric([], float(getattr(v.rate_limit, "used_weight", 0) or 0))
        yield used
        connected = GaugeMetricFamily("v7_venue_stream_connected", "1 while a venue stream is connected.",
                                      labels=["stream"])
        connected.add_metric(["market"], 1 if status.market_connected else 0)
        if status.user_stream:  # DRY_RUN runs without keys and without a user stream: no series, no alert
            connected.add_metric(["user"], 1 if status.user_connected else 0)
        yield connected
        for name, help_text, value in (
            ("v7_venue_user_stream_connects", "User-data stream (re)connects.", status.user_connects),
            ("v7_venue_listen_key_expiries", "listenKeys that expired.", status.listen_key_expiries),
            ("v7_venue_keepalive_failures", "listenKey keepalives that failed.", status.keepalive_failures),
            ("v7_venue_recovered_fills", "Fills recovered from userTrades after a stream gap.", status.recovered_fills),
            ("v7_venue_stream_silences", "Venue streams replaced after going silent.",
             status.market_silences + status.user_silences),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
