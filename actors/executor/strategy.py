"""The factor model: trend, momentum and volatility scores from closed bars.

- trend      (EMA fast - EMA slow) / ATR, clipped to ±2 ATR, scaled to [-1, 1]
- momentum   N-bar return / (ATR * sqrt(N)), clipped to ±2, scaled to [-1, 1]
- volatility 1 - ATR / average ATR, clipped to [-1, 1], signed like trend + momentum: calm
             markets add conviction to the prevailing direction, turbulent ones take it away
- score      weighted sum; |score| >= entry_threshold is a LONG/SHORT signal

The ATR regime (low / normal / high) compares the current ATR with its average over
`vol_window` bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from actors.executor.indicators import atr_series, ema
from config.strategy import SignalConfig
from domain.vocabulary import PositionSide
from exchange.adapter import Bar

Regime = Literal["low", "normal", "high"]


def _clip(value: float, bound: float = 1.0) -> float:
    return max(-bound, min(bound, value))


@dataclass(frozen=True, slots=True)
class SymbolView:
    symbol: str
    bar_ts: datetime  # open time of the last closed bar the view is built on
    close: float
    atr: float
    atr_ratio: float
    regime: Regime
    factors: dict[str, float]
    score: float
    direction: PositionSide


class FactorModel:
    def __init__(self, config: SignalConfig) -> None:
        self.config = config

    @property
    def weights(self) -> dict[str, float]:
        w = self.config.weights
        return {"trend": w.trend, "momentum": w.momentum, "volatility": w.volatility}

    def regime(self, atr_ratio: float) -> Regime:
        if atr_ratio < self.config.atr_low_ratio:
            return "low"
        if atr_ratio > self.config.atr_high_ratio:
            return "high"
        return "normal"

    def evaluate(self, symbol: str, bars: Sequence[Bar]) -> SymbolView | None:
        """The view on the closed `bars` (oldest first); None until there are enough of them."""
        c = self.config
        atrs = atr_series(bars, c.atr_period)
        if len(bars) < c.ema_slow or len(atrs) < 2 or len(bars) <= c.momentum_bars:
            return None
        closes = [b.close for b in bars]
        atr = atrs[-1]
        if atr <= 0:
            return None
        window = atrs[-c.vol_window:]
        atr_ratio = atr / (sum(window) / len(window))
        trend = _clip((ema(closes, c.ema_fast) - ema(closes, c.ema_slow)) / atr, 2.0) / 2.0
        momentum = _clip((closes[-1] - closes[-1 - c.momentum_bars]) / (atr * math.sqrt(c.momentum_bars)), 2.0) / 2.0
        lean = trend + momentum
        volatility = _clip(1.0 - atr_ratio) * (1.0 if lean >= 0 else -1.0)
        factors = {"trend": round(trend, 6), "momentum": round(momentum, 6), "volatility": round(volatility, 6)}
        score = sum(self.weights[name] * value for name, value in factors.items())
        direction: PositionSide = "FLAT"
        if score >= c.entry_threshold:
            direction = "LONG"
        elif score <= -c.entry_threshold:
            direction = "SHORT"
        return SymbolView(
            symbol=symbol, bar_ts=bars[-1].ts, close=closes[-1], atr=atr, atr_ratio=atr_ratio,
            regime=self.regime(atr_ratio), factors=factors, score=round(score, 6), direction=direction,
        )

    def conviction(self, score: float) -> float:
        """Size multiplier: 0.5 at the entry threshold, 1.0 from twice the threshold on."""
        return min(1.0, abs(score) / (2.0 * self.config.entry_threshold))
