"""An independent reference for every money figure: recomputed from the hub's journal alone.

It reads the journal segments the state writer wrote (docs/bus_protocol.md: a record is
`u32 length | u32 crc32 | u64 seq | payload`, the payload one msgpack envelope with the
message under `msg`) with its own parser, takes the fills (`order_filled`) and marks
(`positions_state` rows) in seq order, and recomputes from the definitions in
docs/positions_store.md, not from the store's code:

- one net position per (mode, account, symbol); a fill in its direction adds (entry = the
  size-weighted average of the open size), against it reduces and realizes
  `(price - entry) * closed * direction` before fees; past flat it closes the trade and the rest
  opens the opposite side; a flipping fill's fee is split by size between the two legs;
- a position's mark is its last mark (a fill that opens it marks it at its price); its extremes
  are every fill price and every mark while it is open; MAE/MFE are the excursions of those
  extremes from the average entry of all entries, times the largest size held;
- a day's realized gross and fees are those of the fills stamped (`ts`) on that UTC day; a
  trade counts on the day of its exit; the unrealized part of a past day is its end-of-day
  position (the fills stamped on or before it, whenever committed) at its last mark
  (`Truth.replay`).

Nothing here imports the store, the executor or the journal module: a bug there cannot hide
itself by being shared.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgpack

_HEADER = struct.Struct("<IIQ")
Key = tuple[str, str, str]  # (mode, account, symbol)

# Figures compared with the product agree to this relative error (and, for figures near zero,
# to this absolute error in quote currency: a sum that cancels to ~0 has no relative scale).
REL = 1e-9
ABS = 1e-9
# The flat rule (docs/positions_store.md): a size left over by a reduction, or by a fill past
# flat, of at most this fraction of the size it came from is float noise, not a position.
FLAT = 1e-9


def close_enough(actual: float | None, expected: float) -> bool:
    return actual is not None and math.isclose(float(actual), expected, rel_tol=REL, abs_tol=ABS)


def journal_records(journal_dir: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(seq, envelope) of every record in every segment, in seq order."""
    for segment in sorted(journal_dir.glob("*.wal")):
        data = segment.read_bytes()
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, _crc, seq = _HEADER.unpack_from(data, pos)
            start = pos + _HEADER.size
            if start + length > len(data):
                break  # a torn tail: never ACKed, never applied
            yield seq, msgpack.unpackb(data[start:start + length], raw=False, strict_map_key=False)
            pos = start + length


def _time(value: Any) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Trade:
    """One position from its opening fill to flat (or still open)."""

    key: Key
    direction: int  # +1 LONG, -1 SHORT
    qty: float = 0.0
    entry: float = 0.0  # average entry of the open size
    entry_time: datetime | None = None
    mark: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    peak_qty: float = 0.0
    entered_qty: float = 0.0
    entered_notional: float = 0.0
    exited_qty: float = 0.0
    exited_notional: float = 0.0
    realized_gross: float = 0.0
    fees: float = 0.0
    exit_time: datetime | None = None

    @property
    def side(self) -> str:
        return "LONG" if self.direction > 0 else "SHORT"

    def see(self, price: float) -> None:
        self.low, self.high = min(self.low, price), max(self.high, price)

    def unrealized(self, mark: float | None = None) -> float:
        return ((self.mark if mark is None else mark) - self.entry) * self.qty * self.direction

    def excursions(self) -> tuple[float, float]:
        """(MAE, MFE) in quote currency."""
        avg = self.entered_notional / self.entered_qty
        adverse = (avg - self.low) if self.direction > 0 else (self.high - avg)
        favourable = (self.high - avg) if self.direction > 0 else (avg - self.low)
        size = self.peak_qty
        return max(0.0, adverse) * size, max(0.0, favourable) * size

    @property
    def exit_price(self) -> float:
        return self.exited_notional / self.exited_qty


@dataclass
class DayFigures:
    realized_gross: float = 0.0
    fees: float = 0.0
    closed_trades: int = 0
    unrealized: float = 0.0

    @property
    def realized_net(self) -> float:
        return self.realized_gross - self.fees

    @property
    def total(self) -> float:
        return self.realized_net + self.unrealized


@dataclass
class Truth:
    """Positions, trades and per-day money after replaying a journal's fills and marks."""

    open: dict[Key, Trade] = field(default_factory=dict)
    closed: list[Trade] = field(default_factory=list)
    money: dict[tuple[date, Key], DayFigures] = field(default_factory=dict)
    fills: int = 0
    # (ts, realized gross - fee) of every fill: what it moved the exchange wallet by.
    wallet_moves: list[tuple[datetime, float]] = field(default_factory=list)
    # The end-of-day unrealized P&L of each rolled-over day, per (mode, account, symbol).
    day_end: dict[date, dict[Key, float]] = field(default_factory=dict)

    @classmethod
    def from_journal(cls, journal_dir: Path, rollovers: Iterable[tuple[int, date]] = ()) -> Truth:
        """Replay. `rollovers`: (seq, day) pairs: day D ended (the writer's clock passed its end)
        after the record `seq` was committed and before the next one."""
        truth = cls()
        for _seq, _env in truth.replay(journal_dir, rollovers):
            pass
        return truth

    def replay(self, journal_dir: Path, rollovers: Iterable[tuple[int, date]] = ()
               ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Apply the journal record by record, yielding (seq, envelope) after each: a caller can
        read what the truth was at any commit.

        A day's end-of-day position is made of the fills stamped on or before that day, whenever
        they were committed, valued at the last mark committed before the day rolled over: one
        more replay per rolled-over day, fed only those fills and those marks."""
        ends = [(seq, day, Truth()) for seq, day in rollovers]
        for seq, env in journal_records(journal_dir):
            msg = env.get("msg") or {}
            if msg.get("type") == "order_filled":
                self.fill(msg)
                for _s, day, shadow in ends:
                    if _time(msg["ts"]).date() <= day:
                        shadow.fill(msg)
            elif msg.get("type") == "positions_state":
                self.marks(msg)
                for rolled_at, _d, shadow in ends:
                    if seq <= rolled_at:
                        shadow.marks(msg)
            yield seq, env
        for _s, day, shadow in ends:
            self.day_end[day] = {key: t.unrealized() for key, t in shadow.open.items()}

    def _day(self, day: date, key: Key) -> DayFigures:
        return self.money.setdefault((day, key), DayFigures())

    def fill(self, msg: dict[str, Any]) -> None:
        self.fills += 1
        key: Key = (msg["mode"], msg["account"], msg["symbol"])
        when = _time(msg["ts"])
        qty, price, fee = float(msg["qty"]), float(msg["price"]), float(msg.get("fee", 0.0))
        direction = 1 if msg["side"] == "BUY" else -1
        day = self._day(when.date(), key)
        gross_before, fees_before = day.realized_gross, day.fees
        self._apply(key, when, direction, qty, price, fee, bool(msg.get("reduce_only")), day)
        self.wallet_moves.append((when, (day.realized_gross - gross_before) - (day.fees - fees_before)))

    def _apply(self, key: Key, when: datetime, direction: int, qty: float, price: float, fee: float,
               reduce_only: bool, day: DayFigures) -> None:
        trade = self.open.get(key)
        if trade is not None and trade.direction != direction:
            closed = min(qty, trade.qty)
            if qty - closed <= FLAT * qty:  # the fill's rest is float noise: it closes exactly
                closed = qty
            realized = (price - trade.entry) * closed * trade.direction
            close_fee = fee * closed / qty
            trade.see(price)
            trade.realized_gross += realized
            trade.fees += close_fee
            trade.exited_qty += closed
            trade.exited_notional += closed * price
            held = trade.qty
            trade.qty -= closed
            day.realized_gross += realized
            day.fees += close_fee
            qty = max(0.0, qty - closed)
            fee -= close_fee
            if trade.qty > FLAT * held:
                return
            trade.qty = 0.0
            trade.exit_time = when
            self.closed.append(trade)
            self._day(when.date(), key).closed_trades += 1
            del self.open[key]
            if qty <= 0 or reduce_only:
                return
            trade = None
        if trade is None:  # a position opened by a fill is marked at that fill's price
            trade = self.open[key] = Trade(key=key, direction=direction, entry_time=when, mark=price)
        trade.entry = (trade.entry * trade.qty + price * qty) / (trade.qty + qty)
        trade.qty += qty
        trade.peak_qty = max(trade.peak_qty, trade.qty)
        trade.entered_qty += qty
        trade.entered_notional += qty * price
        trade.fees += fee
        trade.see(price)
        day.fees += fee

    def marks(self, msg: dict[str, Any]) -> None:
        scope = msg.get("scope") or {}
        for row in msg.get("positions", []):
            trade = self.open.get((scope.get("mode"), scope.get("account"), row["symbol"]))
            if trade is not None and float(row["mark_price"]) > 0:
                trade.mark = float(row["mark_price"])
                trade.see(trade.mark)

    def day(self, day: date, today: bool) -> dict[Key, DayFigures]:
        """Per (mode, account, symbol) figures of one UTC day. Today's unrealized is the open
        positions' now; a past day's, its end-of-day positions' at the day's last mark."""
        out: dict[Key, DayFigures] = {}
        for (d, key), fig in self.money.items():
            if d == day:
                out[key] = DayFigures(fig.realized_gross, fig.fees, fig.closed_trades)
        unrealized = ({k: t.unrealized() for k, t in self.open.items()} if today else self.day_end.get(day, {}))
        for key, value in unrealized.items():
            out.setdefault(key, DayFigures()).unrealized = value
        return out

    def totals(self, day: date, today: bool) -> dict[tuple[str, str], DayFigures]:
        """The same, added up per (mode, account)."""
        out: dict[tuple[str, str], DayFigures] = {}
        for (mode, account, _symbol), fig in sorted(self.day(day, today).items()):
            row = out.setdefault((mode, account), DayFigures())
            row.realized_gross += fig.realized_gross
            row.fees += fig.fees
            row.unrealized += fig.unrealized
            row.closed_trades += fig.closed_trades
        return out


# --- comparisons: each mismatch is collected in `errors`, so one run shows all of them ---------


def same(what: str, actual: Any, expected: float, errors: list[str]) -> None:
    if not close_enough(actual, expected):
        errors.append(f"{what}: {actual!r} != truth {expected!r}")


def check_pnl(what: str, pnl: Any, truth: dict[Key, DayFigures], totals: dict[tuple[str, str], DayFigures],
               errors: list[str]) -> None:
    seen: set[Key] = set()
    for scope in pnl.scopes:
        want = totals.get((scope.mode, scope.account), DayFigures())
        for name in ("realized_gross", "fees", "realized_net", "unrealized", "total"):
            same(f"{what} {scope.mode}/{scope.account} {name}", getattr(scope, name), getattr(want, name), errors)
        if scope.closed_trades != want.closed_trades:
            errors.append(f"{what} {scope.mode}/{scope.account} closed_trades {scope.closed_trades} != "
                          f"{want.closed_trades}")
        for symbol, row in scope.symbols.items():
            key = (scope.mode, scope.account, symbol)
            seen.add(key)
            fig = truth.get(key, DayFigures())
            for name in ("realized_gross", "fees", "realized_net", "unrealized", "total"):
                same(f"{what} {symbol} {name}", getattr(row, name), getattr(fig, name), errors)
    for key, fig in truth.items():
        if key not in seen and (fig.fees or fig.realized_gross or fig.unrealized):
            errors.append(f"{what}: {key} missing (truth {fig})")


def check_position(what: str, p: Any, t: Trade, errors: list[str]) -> None:
    if (p.side, p.symbol) != (t.side, t.key[2]):
        errors.append(f"{what}: {p.side} {p.symbol} != truth {t.side} {t.key[2]}")
    same(f"{what} qty", p.qty, t.qty, errors)
    same(f"{what} entry_price", p.entry_price, t.entry, errors)
    same(f"{what} mark_price", p.mark_price, t.mark, errors)
    same(f"{what} trade_min_price", p.trade_min_price, t.low, errors)
    same(f"{what} trade_max_price", p.trade_max_price, t.high, errors)
    if hasattr(p, "unrealized_pnl"):  # a StoredPosition (view, CLI)
        same(f"{what} unrealized_pnl", p.unrealized_pnl, t.unrealized(), errors)
        same(f"{what} realized_gross", p.realized_gross, t.realized_gross, errors)
        same(f"{what} fees", p.fees, t.fees, errors)
    else:  # the database row names them with their schema-1 column names
        same(f"{what} realized_pnl (gross)", p.realized_pnl, t.realized_gross, errors)
        same(f"{what} fees", p.fees, t.fees, errors)


def check_trade(what: str, r: Any, t: Trade, errors: list[str]) -> None:
    mae, mfe = t.excursions()
    row = hasattr(r, "gross_pnl")  # a trade_record row: schema-1 column names
    gross = r.gross_pnl if row else r.realized_gross
    net = r.realized_pnl if row else r.realized_net
    for name, actual, expected in (
        ("qty", r.qty, t.entered_qty), ("entry_price", r.entry_price, t.entered_notional / t.entered_qty),
        ("exit_price", r.exit_price, t.exit_price), ("realized_gross", gross, t.realized_gross),
        ("fees", r.fees, t.fees), ("realized_net", net, t.realized_gross - t.fees), ("mae", r.mae, mae),
        ("mfe", r.mfe, mfe), ("trade_min_price", r.trade_min_price, t.low),
        ("trade_max_price", r.trade_max_price, t.high),
    ):
        same(f"{what} {name}", actual, expected, errors)
    if row:
        avg = t.entered_notional / t.entered_qty
        same(f"{what} mae_pct", r.mae_pct, mae / t.peak_qty / avg, errors)
        same(f"{what} mfe_pct", r.mfe_pct, mfe / t.peak_qty / avg, errors)


def drawdown(navs: Iterable[float]) -> tuple[float, float]:
    """(peak, drawdown fraction) of a NAV series: the peak is the highest NAV seen, the
    drawdown `(peak - last) / peak`."""
    peak, last = -math.inf, 0.0
    for nav in navs:
        peak, last = max(peak, nav), nav
    return peak, (peak - last) / peak if peak > 0 else 0.0


def check_open_and_pnl(views: dict[str, Any], truth: Truth, today: date, errors: list[str]) -> None:
    """The open_positions and pnl_today views against the truth (what the dashboard and executor take)."""
    from bus.messages import PnlToday, StoredPosition

    stored = {(p.mode, p.account, p.symbol): p for p in map(StoredPosition.model_validate, views["open_positions"])}
    assert stored.keys() == truth.open.keys()
    for key, t in truth.open.items():
        check_position(f"open_positions {key[2]}", stored[key], t, errors)
    check_pnl("pnl_today", PnlToday.model_validate(views["pnl_today"]), truth.day(today, today=True),
              truth.totals(today, today=True), errors)
