"""One UTC day's P&L per (mode, account, symbol): the one definition every reader shares.

The `pnl_today` view, `v7 pnl` (today and past days, from the writer or the database) and
the KPI snapshot's `pnl_today` (a copy of the view) are all rendered here:

  realized_gross  sum of the day's position events' realized PnL (every reduction and close,
                  and the estimate of a reconcile close), before fees
  fees            sum of the day's position events' fees (every fill: opening ones, and those
                  of positions still open, included)
  realized_net    realized_gross - fees
  unrealized      (mark - entry) * qty * direction of the position open at the end of the
                  period, at its last mark: now for today; for a past day, the last mark of
                  that day (recorded at the day's end as a `day_end_mark` event)
  total           realized_net + unrealized

An event belongs to the UTC day of its own time (a fill's `ts`), a closed trade to the day of
its exit. Amounts are added in commit (seq) order, and a scope's figures are its symbol rows
added up in symbol order, so that the per-symbol figures and the scope's always sum exactly.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, NamedTuple

from bus.messages import PnlScope, PnlToday, SymbolPnl

Key = tuple[str, str, str]  # (mode, account, symbol)
Scope = tuple[str, str]

# The position events that carry the day's money (the others carry none).
PNL_EVENT_KINDS: Final = frozenset({"open", "add", "reduce", "close", "fill_anomaly", "reconcile_close"})


def utc_day(when: datetime) -> date:
    return when.astimezone(UTC).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_end(day: date) -> datetime:
    """The last representable instant of a UTC day: when its end-of-day marks are stamped."""
    return day_bounds(day)[1] - timedelta(microseconds=1)


class MoneyEvent(NamedTuple):
    """The money one position event moved (a row of `position_event`)."""

    ts: datetime
    mode: str
    account: str
    symbol: str
    realized: float
    fee: float


@dataclass(slots=True, kw_only=True)
class SymbolDay:
    realized_gross: float = 0.0
    fees: float = 0.0
    closed_trades: int = 0


class DayBook:
    """The money of one UTC day, per (mode, account, symbol), as it is committed."""

    def __init__(self, day: date) -> None:
        self.day = day
        self.rows: dict[Key, SymbolDay] = {}

    def add(self, event: MoneyEvent) -> None:
        row = self._row((event.mode, event.account, event.symbol))
        row.realized_gross += event.realized
        row.fees += event.fee

    def add_close(self, key: Key) -> None:
        self._row(key).closed_trades += 1

    def _row(self, key: Key) -> SymbolDay:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = SymbolDay()
        return row

    def render(self, unrealized: Mapping[Key, float], always: Iterable[Scope] = ()) -> PnlToday:
        """The day's P&L. `unrealized`: one entry per position open at the end of the period
        (today: now); `always`: scopes that get a row even with nothing to show (zeros)."""
        by_scope: dict[Scope, dict[str, SymbolPnl]] = {scope: {} for scope in always}
        open_count: dict[Scope, int] = {}
        for key in sorted(self.rows.keys() | unrealized.keys()):
            mode, account, symbol = key
            row = self.rows.get(key) or SymbolDay()
            upnl = unrealized.get(key, 0.0)
            net = row.realized_gross - row.fees
            by_scope.setdefault((mode, account), {})[symbol] = SymbolPnl(
                realized_gross=row.realized_gross, fees=row.fees, realized_net=net, unrealized=upnl,
                total=net + upnl, closed_trades=row.closed_trades)
            if key in unrealized:
                open_count[(mode, account)] = open_count.get((mode, account), 0) + 1
        scopes = [_scope_row(mode, account, symbols, open_count.get((mode, account), 0))
                  for (mode, account), symbols in sorted(by_scope.items())]
        return PnlToday(day=self.day.isoformat(), scopes=scopes)


def _scope_row(mode: str, account: str, symbols: dict[str, SymbolPnl], open_positions: int) -> PnlScope:
    # Added up one by one in symbol order (not fsum, not SQL SUM): exactly what anyone gets who
    # adds the symbol rows in the order they are listed.
    gross = fees = net = unrealized = total = 0.0
    closed = 0
    for row in symbols.values():
        gross += row.realized_gross
        fees += row.fees
        net += row.realized_net
        unrealized += row.unrealized
        total += row.total
        closed += row.closed_trades
    return PnlScope(mode=mode, account=account, realized_gross=gross, fees=fees,  # type: ignore[arg-type]
                    realized_net=net, unrealized=unrealized, total=total, closed_trades=closed,
                    open_positions=open_positions, symbols=symbols)
