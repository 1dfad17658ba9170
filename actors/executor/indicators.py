"""Bar indicators: EMA and Wilder's ATR. Pure functions on plain sequences."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from exchange.adapter import Bar


def ema(values: Sequence[float], period: int) -> float:
    """Exponential moving average of `values` (seeded with the first value), last point."""
    alpha = 2.0 / (period + 1)
    out = values[0]
    for value in values[1:]:
        out += alpha * (value - out)
    return out


def true_ranges(bars: Sequence[Bar]) -> list[float]:
    out = []
    for prev, bar in itertools.pairwise(bars):
        out.append(max(bar.high - bar.low, abs(bar.high - prev.close), abs(bar.low - prev.close)))
    return out


def atr_series(bars: Sequence[Bar], period: int) -> list[float]:
    """Wilder's ATR after each bar from bar `period` on (empty if there are too few bars)."""
    ranges = true_ranges(bars)
    if len(ranges) < period:
        return []
    value = sum(ranges[:period]) / period
    out = [value]
    for tr in ranges[period:]:
        value = (value * (period - 1) + tr) / period
        out.append(value)
    return out
