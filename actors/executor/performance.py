"""Fills from the exchange, today's realized PnL and fees per symbol, and closed-trade stats."""

from __future__ import annotations

import math
import statistics
from collections import deque
from datetime import UTC, datetime, timedelta

from exchange.adapter import ExchangeFill

MIN_TRADES_FOR_SHARPE = 5


def utc_midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class FillBook:
    """Exchange fills seen since `keep_since`, de-duplicated by trade id, oldest first."""

    def __init__(self) -> None:
        self.fills: list[ExchangeFill] = []
        self._ids: set[str] = set()
        self.cursor: datetime | None = None

    def add(self, fills: list[ExchangeFill]) -> list[ExchangeFill]:
        new = [f for f in fills if f.trade_id not in self._ids]
        for fill in new:
            self._ids.add(fill.trade_id)
            self.fills.append(fill)
            if self.cursor is None or fill.ts > self.cursor:
                self.cursor = fill.ts
        return new

    def prune(self, keep_since: datetime) -> None:
        # Keep a minute of overlap so fills at the cursor's timestamp stay de-duplicated.
        cut = keep_since - timedelta(minutes=1)
        if self.fills and self.fills[0].ts < cut:
            self.fills = [f for f in self.fills if f.ts >= cut]
            self._ids = {f.trade_id for f in self.fills}

    def since(self, symbol: str, start: datetime) -> tuple[float, float]:
        """(realized before fees, fees) of `symbol` fills at or after `start`."""
        realized = fees = 0.0
        for fill in self.fills:
            if fill.symbol == symbol and fill.ts >= start:
                realized += fill.realized_pnl
                fees += fill.fee
        return realized, fees


class Performance:
    """Net PnL of closed trades (realized - fees, entry fees included) and what it says."""

    def __init__(self, keep: int = 500) -> None:
        self.closed: deque[float] = deque(maxlen=keep)

    def record(self, net_pnl: float) -> None:
        self.closed.append(net_pnl)

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
