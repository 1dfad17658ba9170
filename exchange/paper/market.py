"""Seeded price simulator: a geometric random walk per symbol with volatility regimes.

Each step moves the mid by a lognormal return whose size is the instrument's annualised
volatility scaled to the step's market time (`tick_s * time_scale` seconds), times a
volatility multiplier that itself wanders (log-AR(1), half-life ~2 minutes of wall time), so
calm and turbulent stretches alternate and the ATR regime means something.

Step `n` of symbol `s` draws from a generator seeded with (seed, s, n): the path depends on
the step number only, so a process restarted from a saved step replays the same path.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from config.settings import InstrumentSettings, PaperSettings
from exchange.adapter import Bar, BookTop
from exchange.ticks import ceil_to, floor_to, round_to

YEAR_S = 365.0 * 24 * 3600
REGIME_HALF_LIFE_S = 120.0  # wall seconds
REGIME_LOG_STD = 0.35  # stationary std of log(vol multiplier)
REGIME_LOG_BOUNDS = (math.log(0.4), math.log(3.0))
TOP_NOTIONAL_RANGE = (20_000.0, 200_000.0)  # quote value resting at the touch
BARS_KEPT = 600
MAX_CATCHUP_STEPS = 400  # after a long stop, resume instead of replaying hours of steps


def _ts(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _bar(row: list[float]) -> Bar:
    """[open time (epoch s), open, high, low, close] -> Bar."""
    return Bar(ts=_ts(float(row[0])), open=float(row[1]), high=float(row[2]), low=float(row[3]), close=float(row[4]))


@dataclass
class SymbolMarket:
    symbol: str
    spec: InstrumentSettings
    mid: float
    log_vol: float = 0.0
    bar_index: int = -1
    bar: list[float] = field(default_factory=list)  # [open, high, low, close] of the open bar
    bars: deque[Bar] = field(default_factory=lambda: deque(maxlen=BARS_KEPT))  # closed bars, oldest first
    top: BookTop | None = None

    @property
    def vol_multiplier(self) -> float:
        return math.exp(self.log_vol)


class MarketSimulator:
    def __init__(self, paper: PaperSettings, symbols: Sequence[str], saved: dict[str, Any] | None, now: float) -> None:
        self.paper = paper
        self.step = 0
        self.last_step_ts = now
        self.markets: dict[str, SymbolMarket] = {}
        self.closed: list[tuple[str, Bar]] = []  # bars closed since the owner last took them
        self._rng = random.Random()
        kappa = math.log(2.0) / REGIME_HALF_LIFE_S
        self._regime_decay = kappa * paper.tick_s
        self._regime_noise = REGIME_LOG_STD * math.sqrt(2.0 * kappa * paper.tick_s)
        self._step_years = paper.tick_s * paper.time_scale / YEAR_S
        saved_markets = (saved or {}).get("markets", {})
        for symbol in symbols:
            spec = paper.instruments[symbol]
            data = saved_markets.get(symbol)
            market = SymbolMarket(symbol, spec, mid=float(data["mid"]) if data else spec.price)
            if data:
                market.log_vol = float(data.get("log_vol", 0.0))
                market.bar_index = int(data.get("bar_index", -1))
                market.bar = [float(x) for x in data.get("bar", [])]
                market.bars.extend(_bar(b) for b in data.get("bars", []))
            self.markets[symbol] = market
        if saved:
            self.step = int(saved["step"])
            self.last_step_ts = float(saved["last_step_ts"])
        else:
            # First start: a history of warm-up bars, as a real exchange has, so strategies
            # that need 50 bars of context can trade at once.
            self.last_step_ts = now - paper.warmup_bars * paper.bar_s
            for _ in self.advance(now, catch_up_limit=None):
                pass
            self.closed.clear()  # warm-up history, not news
        for market in self.markets.values():
            market.top = self._top(market, self.last_step_ts)

    # --- stepping ------------------------------------------------------------------------------

    def next_step_at(self) -> float:
        """Wall time of the next step on the simulation grid (the driver wakes then)."""
        return self.last_step_ts + self.paper.tick_s

    def advance(self, now: float, catch_up_limit: int | None = MAX_CATCHUP_STEPS) -> Iterator[float]:
        """Run every step due by `now`, yielding each step's timestamp after it is applied."""
        tick = self.paper.tick_s
        due = math.floor((now - self.last_step_ts) / tick + 1e-9)
        if due <= 0:
            return
        if catch_up_limit is not None and due > catch_up_limit:
            self.last_step_ts = now - catch_up_limit * tick
            due = catch_up_limit
        for _ in range(due):
            self.step += 1
            self.last_step_ts += tick
            for market in self.markets.values():
                self._step_symbol(market, self.last_step_ts)
            yield self.last_step_ts

    def _step_symbol(self, market: SymbolMarket, ts: float) -> None:
        rng = self._rng
        rng.seed(f"{self.paper.seed}:{market.symbol}:{self.step}")
        z_price, z_vol = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
        lo, hi = REGIME_LOG_BOUNDS
        market.log_vol = min(hi, max(lo, market.log_vol * (1.0 - self._regime_decay) + self._regime_noise * z_vol))
        sigma = market.spec.annual_vol * market.vol_multiplier * math.sqrt(self._step_years)
        market.mid *= math.exp(sigma * z_price - 0.5 * sigma * sigma)
        market.top = self._top(market, ts, rng)
        self._update_bar(market, ts)

    def _top(self, market: SymbolMarket, ts: float, rng: random.Random | None = None) -> BookTop:
        spec = market.spec
        half = market.mid * spec.spread_bps / 20_000.0
        bid = floor_to(market.mid - half, spec.tick_size)
        ask = ceil_to(market.mid + half, spec.tick_size)
        if ask - bid < spec.tick_size * 0.5:
            ask = round_to(bid + spec.tick_size, spec.tick_size)
        lo, hi = TOP_NOTIONAL_RANGE
        draw = rng or random.Random(f"{self.paper.seed}:{market.symbol}:top:{self.step}")
        bid_qty = max(spec.lot_size, floor_to(draw.uniform(lo, hi) / market.mid, spec.lot_size))
        ask_qty = max(spec.lot_size, floor_to(draw.uniform(lo, hi) / market.mid, spec.lot_size))
        mark = round(market.mid, 10)
        return BookTop(symbol=market.symbol, bid=bid, ask=ask, bid_qty=bid_qty, ask_qty=ask_qty, mark=mark,
                       ts=_ts(ts))

    def _update_bar(self, market: SymbolMarket, ts: float) -> None:
        index = math.floor(ts / self.paper.bar_s)
        price = market.mid
        if index != market.bar_index:
            if market.bar:
                closed = _bar([market.bar_index * self.paper.bar_s, *market.bar])
                market.bars.append(closed)
                self.closed.append((market.symbol, closed))
            market.bar_index = index
            market.bar = [price, price, price, price]
        else:
            bar = market.bar
            bar[1] = max(bar[1], price)
            bar[2] = min(bar[2], price)
            bar[3] = price

    # --- views ---------------------------------------------------------------------------------

    def top(self, symbol: str) -> BookTop:
        top = self.markets[symbol].top
        assert top is not None  # set in __init__ for every market
        return top

    def bars(self, symbol: str, limit: int) -> list[Bar]:
        bars = self.markets[symbol].bars
        return list(itertools.islice(bars, max(0, len(bars) - limit), None))

    def dump(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "last_step_ts": self.last_step_ts,
            "markets": {
                s: {"mid": m.mid, "log_vol": m.log_vol, "bar_index": m.bar_index, "bar": m.bar,
                    "bars": [[b.ts.timestamp(), b.open, b.high, b.low, b.close] for b in m.bars]}
                for s, m in self.markets.items()
            },
        }
