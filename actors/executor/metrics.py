"""Executor metrics (`v7_executor_*`), declared once with fixed label sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ExecutorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.signals = Counter("v7_executor_signals", "Strategy signals, by symbol and direction.",
                               ["symbol", "direction"], registry=registry)
        self.vetoes = Counter("v7_executor_vetoes", "Signals denied by a risk rule, by reason.", ["reason"],
                              registry=registry)
        self.intents = Counter("v7_executor_order_intents", "Order intents sent to the router, by purpose.",
                               ["purpose"], registry=registry)
        self.exchange_errors = Counter("v7_executor_exchange_errors", "Loops skipped: exchange data unavailable.",
                                       ["kind"], registry=registry)
        self.adopted = Counter("v7_executor_adopted_positions", "Unplanned positions given a bracket.",
                               registry=registry)
        self.closed_trades = Counter("v7_executor_closed_trades", "Positions seen to close.", registry=registry)
        self.closed_pnl = Counter("v7_executor_closed_trade_pnl_abs", "Sum of |net PnL| of closed trades (quote).",
                                  ["outcome"], registry=registry)
        self.open_positions = Gauge("v7_executor_open_positions", "Open positions on the exchange.",
                                    registry=registry)
        self.pending_entries = Gauge("v7_executor_pending_entries", "Entry intents not finished yet.",
                                     registry=registry)
        self.nav_excluded = Counter("v7_executor_nav_samples_excluded",
                                    "Anomalous NAV readings kept out of VaR/CVaR and the KPIs.", registry=registry)
        self.nav = Gauge("v7_executor_nav", "NAV the executor sizes with (from nav_state).", registry=registry)
        self.drawdown = Gauge("v7_executor_drawdown_pct", "Drawdown from peak NAV (fraction).", registry=registry)
        self.exposure = Gauge("v7_executor_exposure_nav_pct", "Gross exposure as a fraction of NAV.",
                              registry=registry)
        self.unrealized = Gauge("v7_executor_unrealized_pnl", "Unrealized PnL of open positions (quote).",
                                registry=registry)
