"""Closed-trade statistics over a named window: the trades the positions store closed today (UTC).

The trades come from the store's `trades_today` view (net PnL = realized gross - fees, entry
fees included), so expectancy and the Sharpe word cover exactly the trades beside them in
today's figures; the window is named in kpis_v7 (`performance.window`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from bus.messages import ClosedTrade

MIN_TRADES_FOR_SHARPE = 5
WINDOW = "trades closed today (UTC)"


class Performance:
    def __init__(self) -> None:
        self.closed: list[float] = []

    def replace(self, trades: Iterable[ClosedTrade], mode: str, account: str) -> None:
        self.closed = [t.realized_net for t in trades if (t.mode, t.account) == (mode, account)]

    @property
    def expectancy(self) -> float | None:
        return statistics.fmean(self.closed) if self.closed else None

    @property
    def sharpe_state(self) -> str | None:
        """Per-trade Sharpe (mean / stdev of net PnL) as a word; null before any trade closes."""
        if not self.closed:
            return None
        if len(self.closed) < MIN_TRADES_FOR_SHARPE:
            return "insufficient_data"
        stdev = statistics.stdev(self.closed)
        if stdev <= 0 or not math.isfinite(stdev):
            return "flat"
        ratio = statistics.fmean(self.closed) / stdev
        if ratio >= 0.5:
            return "strong"
        if ratio > 0.1:
            return "positive"
        if ratio >= -0.1:
            return "flat"
        return "negative"
