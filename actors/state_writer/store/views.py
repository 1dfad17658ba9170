"""The store's views, kept in memory: rendered for snapshot requests, published when they change.

No view reads the database after `load()` (once per `open()`/`reopen()`): open positions,
the active scope and reconciliation are the store's own state; today's P&L, today's trades
and the imported files are kept here, fed by each committed batch (`absorb`), and the P&L
day rolls over at the UTC day boundary (`roll`, from the writer's tick).

Publishing: the commit path marks the views a batch may have changed (`touch`); `changed()`
renders only those, compares each with what was last published, and returns the ones that
differ. A batch of heartbeats therefore renders nothing, and a mark that moves nothing
publishes nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from sqlalchemy.orm import Session

from actors.state_writer.store import queries
from actors.state_writer.store.pnl import DayBook, day_bounds, utc_day
from actors.state_writer.store.state import StoreState
from actors.state_writer.store.unit import Unit
from bus.messages import ReconciliationIssue, ReconciliationView, ScopeKey, SymbolKey

OPEN_POSITIONS: Final = "open_positions"
ACTIVE_SCOPE: Final = "active_scope"
RECONCILIATION: Final = "reconciliation"
PNL_TODAY: Final = "pnl_today"
TRADES_TODAY: Final = "trades_today"
LEGACY_IMPORTS: Final = "legacy_imports"
PUBLISHED: Final = (OPEN_POSITIONS, ACTIVE_SCOPE, RECONCILIATION, PNL_TODAY, TRADES_TODAY, LEGACY_IMPORTS)


class _Day:
    """One UTC day's P&L book and its newest closed trades (rendered once each)."""

    def __init__(self, day: date) -> None:
        self.book = DayBook(day)
        self.trades: deque[dict[str, Any]] = deque(maxlen=queries.TRADES_KEPT)


class StoreViews:
    def __init__(self, state: Callable[[], StoreState]) -> None:
        self._state = state  # the store's current state (replaced on reopen)
        self._renderers: dict[str, Callable[[], Any]] = {
            OPEN_POSITIONS: self._open_positions, ACTIVE_SCOPE: self._active_scope,
            RECONCILIATION: self._reconciliation, PNL_TODAY: self._pnl_today, TRADES_TODAY: self._trades_today,
            LEGACY_IMPORTS: self._legacy_imports,
        }
        self._published: dict[str, Any] = {}  # kept across reopen: only real changes are published again
        self.reset(date.min)

    def reset(self, day: date) -> None:
        """Forget everything loaded (before `load`); every view counts as touched."""
        self.day = day
        self._days: dict[date, _Day] = {day: _Day(day)}  # today, and days ahead (fills stamped in the future)
        self._imports: list[dict[str, Any]] = []
        self._touched: set[str] = set(PUBLISHED)

    # --- fed by the store ----------------------------------------------------------------------

    def load(self, session: Session, day: date) -> None:
        """Today's (and later) money and trades, and every imported file: once per open."""
        self.reset(day)
        start, _end = day_bounds(day)
        for event in queries.money_events(session, start):
            self._day(utc_day(event.ts)).book.add(event)
        for close_day, key in queries.trade_close_keys(session, start):
            self._day(close_day).book.add_close(key)
        for trade in queries.closed_trades(session, start):
            self._day(utc_day(trade.exit_time)).trades.append(trade.model_dump(mode="json"))
        self._imports = [r.model_dump(mode="json") for r in queries.legacy_imports(session)]

    def absorb(self, unit: Unit) -> None:
        """What a committed transaction adds to the views."""
        for event in unit.money:
            day = utc_day(event.ts)
            if day >= self.day:  # an event stamped on a past day counts on that day only (v7 pnl --day)
                self._day(day).book.add(event)
        for trade in unit.trades:
            day = utc_day(trade.exit_time)
            if day >= self.day:
                d = self._day(day)
                d.book.add_close((trade.mode, trade.account, trade.symbol))
                d.trades.append(trade.model_dump(mode="json"))
                self._touched.add(TRADES_TODAY)
        if unit.money or unit.trades:
            self._touched.add(PNL_TODAY)
        if unit.imports:
            self._imports += [r.model_dump(mode="json") for r in unit.imports]
            self._touched.add(LEGACY_IMPORTS)

    def roll(self, today: date) -> date | None:
        """Move to `today` if the day has ended; returns the day that ended (None if it has not)."""
        if today <= self.day:
            return None
        ended = self.day
        self._days = {d: v for d, v in self._days.items() if d >= today}
        self.day = today
        self._day(today)
        self._touched.update((PNL_TODAY, TRADES_TODAY))
        return ended

    def touch(self, *keys: str) -> None:
        self._touched.update(keys)

    def _day(self, day: date) -> _Day:
        d = self._days.get(day)
        if d is None:
            d = self._days[day] = _Day(day)
        return d

    # --- read ----------------------------------------------------------------------------------

    def render(self, key: str) -> Any:
        """The view as a snapshot request gets it (JSON-ready); KeyError for a key that is not a view."""
        return self._renderers[key]()

    def changed(self) -> dict[str, Any]:
        """The views whose value differs from what was last returned here (rendered now)."""
        out: dict[str, Any] = {}
        for key in PUBLISHED:
            if key not in self._touched:
                continue
            value = self.render(key)
            if self._published.get(key, _NEVER) != value:
                self._published[key] = out[key] = value
        self._touched.clear()
        return out

    def _open_positions(self) -> list[dict[str, Any]]:
        return [p.to_view().model_dump(mode="json") for _k, p in sorted(self._state().positions.items())]

    def _active_scope(self) -> dict[str, Any]:
        return self._state().active.model_dump(mode="json")

    def _pnl_today(self) -> dict[str, Any]:
        st = self._state()
        unrealized = {key: p.unrealized() for key, p in st.positions.items()}
        today = self._days[self.day].book
        return today.render(unrealized, always=[(st.active.mode, st.active.account)]).model_dump(mode="json")

    def _trades_today(self) -> list[dict[str, Any]]:
        return list(self._days[self.day].trades)

    def _legacy_imports(self) -> list[dict[str, Any]]:
        return list(self._imports)

    def _reconciliation(self) -> dict[str, Any]:
        return reconciliation_view(self._state()).model_dump(mode="json")


_NEVER = object()


def reconciliation_view(st: StoreState) -> ReconciliationView:
    issues = [
        ReconciliationIssue(
            mode=i.mode, account=i.account, symbol=i.symbol, kind=i.kind, policy=i.policy,  # type: ignore[arg-type]
            store_side=i.store_side, store_qty=i.store_qty, exchange_side=i.exchange_side,  # type: ignore[arg-type]
            exchange_qty=i.exchange_qty, exchange_entry_price=i.exchange_entry_price,
            exchange_mark_price=i.exchange_mark_price, detail=i.detail, opened_seq=i.opened_seq,
            last_seen_seq=i.last_seen_seq, opened_at=i.opened_at)
        for _k, i in sorted(st.issues.items())
    ]
    halted = sorted({(i.mode, i.account) for i in issues if i.policy == "halt"})
    return ReconciliationView(
        policy=st.cfg.reconcile_policy, issues=issues,
        blocked=[SymbolKey(mode=i.mode, account=i.account, symbol=i.symbol) for i in issues],
        halted=[ScopeKey(mode=m, account=a) for m, a in halted],  # type: ignore[arg-type]
        last_report_seq=dict(st.last_report_seq))
