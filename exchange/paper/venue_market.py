"""The paper engine's market in DRY_RUN: a venue's own market data instead of the simulator.

The venue adapter's market stream feeds it (`on_book`, `on_bar`); the paper engine steps it on
its clock like the simulator (`advance` yields one step when new data arrived) and fills
orders against the venue's book. Nothing here is persisted: the venue is the market.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from exchange.adapter import Bar, BookTop
from exchange.errors import ExchangeUnavailable

BARS_KEPT = 600


@dataclass
class VenueSymbol:
    symbol: str
    top: BookTop | None = None
    bars: deque[Bar] = field(default_factory=lambda: deque(maxlen=BARS_KEPT))
    bar_index: int = -1  # counts bars closed, for the engine's "a bar closed" bookkeeping
    vol_multiplier: float = 1.0  # the simulator's regime gauge; a venue has none


class VenueMarket:
    def __init__(self, symbols: Iterable[str], history: dict[str, list[Bar]] | None = None) -> None:
        self.markets = {s: VenueSymbol(s) for s in symbols}
        for symbol, bars in (history or {}).items():
            if symbol in self.markets:
                self.markets[symbol].bars.extend(bars)
        self.closed: list[tuple[str, Bar]] = []
        self.step = 0
        self._fresh = False

    # --- fed by the venue's market stream (the caller holds the engine's lock) -------------------

    def on_book(self, top: BookTop) -> None:
        market = self.markets.get(top.symbol)
        if market is not None:
            market.top = top
            self._fresh = True

    def on_bar(self, symbol: str, bar: Bar) -> None:
        market = self.markets.get(symbol)
        if market is None or (market.bars and bar.ts <= market.bars[-1].ts):
            return
        market.bars.append(bar)
        market.bar_index += 1
        self.closed.append((symbol, bar))
        self._fresh = True

    # --- what the paper engine asks ----------------------------------------------------------------

    def next_step_at(self) -> None:
        """No grid: a step follows whatever the venue sent."""
        return None

    def advance(self, now: float) -> Iterator[float]:
        """One step when the venue sent anything since the last one."""
        if self._fresh:
            self._fresh = False
            self.step += 1
            yield now

    def top(self, symbol: str) -> BookTop:
        top = self.markets[symbol].top
        if top is None:
            raise ExchangeUnavailable("no_market_data", f"{symbol}: no book from the venue yet")
        return top

    def bars(self, symbol: str, limit: int) -> list[Bar]:
        bars = self.markets[symbol].bars
        return list(itertools.islice(bars, max(0, len(bars) - limit), None))

    def dump(self) -> dict[str, Any]:
        return {}
