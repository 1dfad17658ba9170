"""Market data: a deterministic seeded price walk per symbol, its book top, mark price and klines."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from decimal import Decimal

from .config import SymbolSpec, VenueConfig
from .numbers import ZERO, floor_to_step, round_to_step

# Binance's kline intervals and their lengths in seconds ("1M" as 30 days).
KLINE_INTERVALS: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
    "3d": 259200,
    "1w": 604800,
    "1M": 2592000,
}
KLINE_HISTORY = 1500
FUNDING_RATE = Decimal("0.00010000")
INTEREST_RATE = Decimal("0.00010000")
FUNDING_PERIOD_MS = 8 * 3600 * 1000


@dataclass
class BookTop:
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    update_id: int
    time_ms: int


@dataclass
class Kline:
    interval: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote: Decimal = ZERO
    first_trade_id: int = -1
    last_trade_id: int = -1
    closed: bool = False

    def update(self, price: Decimal) -> None:
        self.close = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)

    def add_trade(self, trade_id: int, price: Decimal, qty: Decimal, buyer_taker: bool) -> None:
        self.update(price)
        self.volume += qty
        self.quote_volume += qty * price
        self.trades += 1
        if buyer_taker:
            self.taker_buy_volume += qty
            self.taker_buy_quote += qty * price
        if self.first_trade_id < 0:
            self.first_trade_id = trade_id
        self.last_trade_id = trade_id


@dataclass
class SymbolMarket:
    """One symbol's walk. `bid` moves by a seeded Gaussian number of ticks per step."""

    spec: SymbolSpec
    rng: random.Random
    kline_ms: dict[str, int]
    seed: int
    started_ms: int
    top: BookTop = field(init=False)
    last_price: Decimal = field(init=False)
    last_qty: Decimal = ZERO
    klines: dict[str, list[Kline]] = field(default_factory=dict)
    paused: bool = False
    # Quantity already taken from the current touch by resting orders (reset when the touch changes).
    bid_taken: Decimal = ZERO
    ask_taken: Decimal = ZERO
    just_closed: list[Kline] = field(default_factory=list)
    _update_id: int = 1000

    def __post_init__(self) -> None:
        bid = round_to_step(self.spec.start_price, self.spec.tick_size)
        self.top = self._make_top(bid, self.started_ms)
        self.last_price = bid
        self.day_open = bid
        self.day_high = bid
        self.day_low = bid
        self.day_volume = ZERO
        self.day_quote_volume = ZERO
        self.day_trades = 0
        self.first_trade_id = -1
        self.last_trade_id = -1

    # --- the walk -------------------------------------------------------------------------------

    def _make_top(self, bid: Decimal, now_ms: int) -> BookTop:
        spec = self.spec
        bid = min(max(bid, spec.min_price), spec.max_price - spec.tick_size * spec.spread_ticks)
        ask = bid + spec.tick_size * spec.spread_ticks
        self.bid_taken = ZERO
        self.ask_taken = ZERO
        self._update_id += 1
        return BookTop(bid, self._qty(), ask, self._qty(), self._update_id, now_ms)

    def _qty(self) -> Decimal:
        raw = self.spec.top_qty * Decimal(str(round(self.rng.uniform(0.5, 1.5), 6)))
        return max(self.spec.step_size, floor_to_step(raw, self.spec.step_size))

    def step(self, now_ms: int) -> BookTop:
        """Advance the walk one tick (a paused walk keeps its prices, refreshing only the time)."""
        if self.paused:
            self.top.time_ms = now_ms
            return self.top
        ticks = round(self.rng.gauss(0.0, self.spec.volatility_ticks))
        self.top = self._make_top(self.top.bid + self.spec.tick_size * ticks, now_ms)
        self._market_moved(now_ms)
        return self.top

    def _market_moved(self, now_ms: int) -> None:
        # The rest of the market trades at the bid: last price and bars follow it.
        self.last_price = self.top.bid
        self._touch_klines(self.top.bid, now_ms)

    def set_bid(self, bid: Decimal, now_ms: int) -> BookTop:
        self.top = self._make_top(round_to_step(bid, self.spec.tick_size), now_ms)
        self._market_moved(now_ms)
        return self.top

    @property
    def mid(self) -> Decimal:
        return (self.top.bid + self.top.ask) / 2

    @property
    def mark_price(self) -> Decimal:
        return self.mid

    # --- trades and statistics ------------------------------------------------------------------

    def record_trade(self, trade_id: int, price: Decimal, qty: Decimal, buyer_taker: bool, now_ms: int) -> None:
        self.last_price = price
        self.last_qty = qty
        self.day_high = max(self.day_high, price)
        self.day_low = min(self.day_low, price)
        self.day_volume += qty
        self.day_quote_volume += qty * price
        self.day_trades += 1
        if self.first_trade_id < 0:
            self.first_trade_id = trade_id
        self.last_trade_id = trade_id
        for interval in self.klines:
            self._current_kline(interval, now_ms).add_trade(trade_id, price, qty, buyer_taker)

    # --- klines ---------------------------------------------------------------------------------

    def _bucket(self, interval: str, now_ms: int) -> tuple[int, int]:
        length = self.kline_ms[interval]
        open_time = now_ms - now_ms % length
        return open_time, open_time + length - 1

    def _current_kline(self, interval: str, now_ms: int) -> Kline:
        bars = self.klines.setdefault(interval, [])
        open_time, close_time = self._bucket(interval, now_ms)
        if bars and bars[-1].open_time == open_time:
            return bars[-1]
        if bars and not bars[-1].closed:
            bars[-1].closed = True
            self.just_closed.append(bars[-1])
        price = bars[-1].close if bars else self.top.bid
        bar = Kline(interval, open_time, close_time, price, price, price, price)
        bars.append(bar)
        del bars[:-KLINE_HISTORY]
        return bar

    def _touch_klines(self, price: Decimal, now_ms: int) -> None:
        for interval in self.klines:
            self._current_kline(interval, now_ms).update(price)

    def track(self, interval: str, now_ms: int) -> Kline:
        """Start keeping live bars of `interval` (from now on) and return the current one."""
        return self._current_kline(interval, now_ms)

    def roll(self, now_ms: int) -> list[Kline]:
        """Close every bar whose interval has ended (opening the next). Returns the bars closed since last call."""
        for interval in list(self.klines):
            self._current_kline(interval, now_ms)
        closed, self.just_closed = self.just_closed, []
        return closed

    def history(self, interval: str, start_ms: int | None, end_ms: int | None, limit: int, now_ms: int) -> list[Kline]:
        """Bars for GET /fapi/v1/klines: live bars, preceded by synthetic ones before the fake started."""
        live = list(self.klines.get(interval, []))
        if not live:
            live = [self.track(interval, now_ms)]
        length = self.kline_ms[interval]
        first_live = live[0].open_time
        end = end_ms if end_ms is not None else now_ms
        start = start_ms if start_ms is not None else min(first_live, end - end % length - (limit - 1) * length)
        start -= start % length
        bars: list[Kline] = []
        open_time = start
        while open_time < first_live and open_time <= end and len(bars) < limit:
            bars.append(self._synthetic(interval, open_time, length, first_live))
            open_time += length
        bars.extend(bar for bar in live if start <= bar.open_time <= end)
        return bars[-limit:] if start_ms is None else bars[:limit]

    def _synthetic(self, interval: str, open_time: int, length: int, first_live: int) -> Kline:
        """A closed bar before the fake's start: deterministic noise around the start price."""
        rng = random.Random(f"{self.seed}:{self.spec.symbol}:{interval}:{open_time}")
        tick = self.spec.tick_size
        base = self.spec.start_price
        moves = [Decimal(round(rng.gauss(0.0, self.spec.volatility_ticks * 4))) * tick for _ in range(4)]
        open_, close = base + moves[0], base + moves[1]
        high = max(open_, close) + abs(moves[2])
        low = min(open_, close) - abs(moves[3])
        volume = round_to_step(self.spec.top_qty * Decimal(str(round(rng.uniform(1, 20), 3))), self.spec.step_size)
        return Kline(
            interval,
            open_time,
            min(open_time + length - 1, first_live - 1),
            open_,
            high,
            low,
            close,
            volume=volume,
            quote_volume=volume * close,
            trades=rng.randint(1, 100),
            taker_buy_volume=round_to_step(volume / 2, self.spec.step_size),
            taker_buy_quote=round_to_step(volume / 2, self.spec.step_size) * close,
            closed=True,
        )

    def next_funding_ms(self, now_ms: int) -> int:
        return now_ms - now_ms % FUNDING_PERIOD_MS + FUNDING_PERIOD_MS


class MarketData:
    """All symbols' walks; `step` is called by the venue's timer."""

    def __init__(self, config: VenueConfig, now_ms: int) -> None:
        kline_ms = {name: int(config.kline_seconds.get(name, secs) * 1000) for name, secs in KLINE_INTERVALS.items()}
        self.kline_ms = kline_ms
        self.symbols: dict[str, SymbolMarket] = {}
        for spec in config.symbols:
            rng = random.Random(config.seed * 1_000_003 + zlib.crc32(spec.symbol.encode()))
            self.symbols[spec.symbol] = SymbolMarket(spec, rng, kline_ms, config.seed, now_ms)

    def get(self, symbol: str) -> SymbolMarket | None:
        return self.symbols.get(symbol)
