"""The positions store: a CommitHook that writes open positions, trades and their audit trail.

`apply(batch)` runs in the writer loop after the journal fsync and before any ACK. Every
batch that changes the store is one transaction, and that transaction also moves
`store_meta.applied_seq` to the batch's last seq; a batch that changes nothing (heartbeats,
marks inside the trade's range) touches no database at all. Each message goes to the module
of its concern (a `match` on its type): `fills.py`, `marks.py`, `scopes.py`,
`reconciliation.py`, `legacy_import.py`.

Trade extremes and the last mark are exact in memory. They reach the database with every
write of their row (fill, TP/SL change, close) and otherwise at most once per position per
`store.extremes_flush_s`. Until written, `replay_from_seq` stays below the first mark that
moved them. `applied_seq()` tells the writer how far back to keep and replay the journal:
min(applied_seq, replay_from_seq) as committed, so after a crash the marks the database had
not received are re-derived and a trade that later closes has MAE/MFE over its whole life.
Replayed records the database already reflects (seq <= applied_seq) only feed marks, so
nothing is applied twice. Batches the store ignores move the committed seqs forward at most
once per `CHECKPOINT_S`, so the writer can still compact its journal.

Views are in memory (`views.py`); no snapshot request reads the database. At the end of a
UTC day (`tick`) the P&L day rolls over and every open position's last mark of the day is
recorded (`day_end.py`), so a past day's unrealized P&L is at that day's last mark.

If the database refuses a batch, `apply` raises and the store refuses every later batch:
the writer stops ACKing, and retries by `reopen()` (memory reloaded from the database) and a
replay of the journal from `applied_seq()`, the same catch-up a restart does.
Bad input is not a reason to raise: odd fills and unknown positions become audit events
and reconciliation issues.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actors.state_writer.hooks import Committed
from actors.state_writer.store import fills, marks, queries, reconciliation, scopes
from actors.state_writer.store.bounds import FillBounds
from actors.state_writer.store.day_end import (
    DayEndMark,
    day_end_marks,
    flat_mark,
    mark_of,
    with_basis,
    write_day_end_marks,
)
from actors.state_writer.store.legacy_import import on_legacy_import
from actors.state_writer.store.lock import StoreLock
from actors.state_writer.store.metrics import StoreMetrics
from actors.state_writer.store.pnl import utc_day
from actors.state_writer.store.schema import StoreError, make_engine, migrate
from actors.state_writer.store.state import StoreState
from actors.state_writer.store.tables import (
    FillRow,
    OpenPositionRow,
    PositionEventRow,
    ReconciliationIssueRow,
    StoreMeta,
)
from actors.state_writer.store.unit import FILL_SEEN, Issue, Unit, position_from_row
from actors.state_writer.store.views import (
    ACTIVE_SCOPE,
    LEGACY_IMPORTS,
    OPEN_POSITIONS,
    PNL_TODAY,
    PUBLISHED,
    RECONCILIATION,
    TRADES_TODAY,
    StoreViews,
)
from bus.messages import (
    ActiveScope,
    ExchangePositionsReported,
    ImportLegacyPositions,
    OrderFilled,
    OrderUpdated,
    PositionsLedger,
    PositionsState,
    RequestExit,
    ResolveMismatch,
    SubmitOrder,
    SwitchScope,
    utc_now,
)
from config.settings import Settings

log = logging.getLogger(__name__)

STORE_STATUS: Final = "store_status"
CHECKPOINT_S: Final = 10.0  # at most this often, a batch the store ignores still records its seq
_DAY_MARKS_RETRY_S: Final = 5.0  # end-of-day marks the database refused are tried again this often

# The views a committed message of each kind may change (rendered and compared after the batch).
_FILL_VIEWS: Final = (OPEN_POSITIONS, PNL_TODAY, TRADES_TODAY, RECONCILIATION)
_ADOPT_VIEWS: Final = (RECONCILIATION, OPEN_POSITIONS, PNL_TODAY, TRADES_TODAY)


class StoreFailed(StoreError):
    """An earlier batch could not be committed; nothing more is applied until `reopen()` (or a restart)."""


class PositionStore:
    keys = (*PUBLISHED, STORE_STATUS)

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.url = settings.database_url
        self.cfg = settings.store
        self.metrics = StoreMetrics(registry or CollectorRegistry())
        self._clock = clock
        self._default_scope = ActiveScope(mode=settings.mode, account=settings.account, since_seq=0)
        self._engine: Engine | None = None
        self._lock: StoreLock | None = None
        self._scopes_seen: set[tuple[str, str]] = set()  # gauges to zero when a scope empties
        self.views = StoreViews(lambda: self.state)
        self._reset()

    def _reset(self) -> None:
        """Everything held in memory, as before `open()` loads it from the database."""
        self.state = StoreState(cfg=self.cfg, metrics=self.metrics, active=self._default_scope)
        self.schema_version = 0
        self._persisted: set[tuple[str, str, str]] = set()
        self._db_seq = 0  # store_meta.applied_seq as committed
        self._durable_from = 0  # min(applied_seq, replay_from_seq) as committed
        self._seen_seq = 0  # last seq applied in memory
        self._checkpoint_mono = 0.0
        self._failed: BaseException | None = None
        self._day_marks: list[DayEndMark] = []  # recorded at a day's end, not yet in the database
        self._day_marks_retry = 0.0
        # The stamp rule of day_end.py: positions of the current day before early fills, and the
        # end-of-day positions of the day that ended last (which late fills move).
        self._basis: dict[tuple[str, str, str], DayEndMark] = {}
        self._ended_day: date | None = None
        self._ended: dict[tuple[str, str, str], DayEndMark] = {}

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StoreError("positions store is not open")
        return self._engine

    def open(self) -> None:
        """Connect, lock, create or migrate the schema, load open positions (under the writer's lock)."""
        engine = make_engine(self.url, schema=self.cfg.db_schema, synchronous=self.cfg.sqlite_synchronous)
        lock = StoreLock(engine, self.url, self.cfg.db_schema)
        lock.acquire()
        try:
            self.schema_version = migrate(engine, self.cfg.db_schema)
            self._engine, self._lock = engine, lock
            self._load()
        except SQLAlchemyError as exc:
            self._engine = self._lock = None
            lock.release()
            engine.dispose()
            raise StoreError(f"positions database {self._safe_url()}: {exc}") from None
        except BaseException:
            self._engine = self._lock = None
            lock.release()
            engine.dispose()
            raise
        log.info("positions store open: %s schema v%d applied_seq=%d open=%d issues=%d active=%s/%s day=%s",
                 self._safe_url(), self.schema_version, self._db_seq, len(self.state.positions),
                 len(self.state.issues), self.state.active.mode, self.state.active.account, self.views.day)

    def reopen(self) -> None:
        """After a failed commit: forget memory (it may hold half of that batch) and load the
        database again, as a restart would; the writer then replays the journal after `applied_seq()`."""
        self.close()
        self._reset()
        self.open()

    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def _load(self) -> None:
        st = self.state
        with Session(self.engine) as s, s.begin():
            meta = s.get(StoreMeta, 1)
            last_active: datetime | None = None
            if meta is None:
                s.execute(insert(StoreMeta).values(
                    id=1, applied_seq=0, replay_from_seq=0, active_mode=st.active.mode,
                    active_account=st.active.account, active_since_seq=0, updated_at=self._clock()))
                applied, replay_from = 0, 0
            else:
                last_active = meta.updated_at
                applied, replay_from = meta.applied_seq, meta.replay_from_seq
                st.active = ActiveScope(mode=meta.active_mode, account=meta.active_account,  # type: ignore[arg-type]
                                        since_seq=meta.active_since_seq)
            for row in s.scalars(select(OpenPositionRow)):
                p = position_from_row(row)
                st.positions[p.key] = p
                self._persisted.add(p.key)
            for row in s.scalars(select(ReconciliationIssueRow).where(ReconciliationIssueRow.status == "open")):
                issue = Issue.from_row(row)
                st.issues[issue.key] = issue
            last_fills = (select(FillRow.mode, FillRow.account, FillRow.symbol, func.max(FillRow.ts))
                          .group_by(FillRow.mode, FillRow.account, FillRow.symbol))
            for mode, account, symbol, ts in s.execute(last_fills):
                st.last_fill_ts[(mode, account, symbol)] = ts  # max() keeps the column's UTC type
            checked = (select(PositionEventRow.mode, PositionEventRow.account, PositionEventRow.seq)
                       .where(PositionEventRow.kind == "reconcile_checked").order_by(PositionEventRow.seq))
            for mode, account, seq in s.execute(checked):
                st.last_report_seq[f"{mode}/{account}"] = seq
            self.views.load(s, self._open_day(s, last_active))
            self._load_day_ends(s, self.views.day)
        self._db_seq = applied
        self._durable_from = self._seen_seq = min(applied, replay_from)
        self._checkpoint_mono = time.monotonic()
        self.metrics.applied_seq.set(applied)
        self._update_gauges()

    def _open_day(self, s: Session, last_active: datetime | None) -> date:
        """The P&L day the store was in when it last committed, unless that day's end is recorded
        already: a writer that was down when a day ended records that day's last marks (as the
        database and the journal replay leave them) at its first tick."""
        today = utc_day(self._clock())
        if last_active is None:
            return today
        day = utc_day(last_active)
        ended = queries.last_day_ended(s)
        if ended is not None and ended >= day:
            day = ended + timedelta(days=1)
        return min(day, today)

    def _load_day_ends(self, s: Session, day: date) -> None:
        """The early-fill bases of `day` and the end-of-day positions of the day before it."""
        self._basis = {m.key: m for m in (_record(row, detail) for row, detail in
                                          queries.day_end_records(s, queries.DAY_END_BASIS, day))}
        before = day - timedelta(days=1)
        ended = {m.key: m for m in (_record(row, detail) for row, detail in
                                    queries.day_end_records(s, queries.DAY_END_MARK, before))}
        self._ended_day, self._ended = before, ended

    def close(self) -> None:
        """Write whatever extremes are pending (unless a commit failed), then let go of the database."""
        if self._engine is None:
            return
        try:
            if self._failed is None:
                dirty = [p for p in self.state.positions.values() if p.dirty_since_seq is not None]
                if dirty or self._day_marks or self._seen_seq > self._db_seq:
                    unit = Unit(self.engine, self.metrics, self._persisted)
                    try:
                        self._write_day_marks(unit)
                        for p in dirty:
                            unit.write_position(p)
                        unit.write_meta(applied_seq=self._seen_seq, replay_from_seq=self._seen_seq,
                                        updated_at=self._clock())
                        unit.commit()
                    finally:
                        unit.close()
                    self._day_marks.clear()
                    self._db_seq = self._durable_from = self._seen_seq
        except SQLAlchemyError as exc:
            log.error("positions store: final write failed (%s); the journal replays it on start", exc)
        finally:
            if self._lock is not None:
                self._lock.release()
            self._engine.dispose()
            self._engine = None

    # --- the commit path -----------------------------------------------------------------------

    def admission(self) -> FillBounds:
        return FillBounds(self.state.positions)

    def applied_seq(self) -> int:
        """The journal after this seq rebuilds what is in memory but not (yet) in the database."""
        return self._durable_from

    def apply(self, batch: list[Committed]) -> None:
        if self._failed is not None:
            raise StoreFailed(f"positions store stopped after a failed commit: {self._failed}")
        todo = [c for c in batch if c.seq > self._seen_seq]
        if not todo:
            return
        started = time.perf_counter()
        unit = Unit(self.engine, self.metrics, self._persisted)
        try:
            self._write_day_marks(unit)
            for c in todo:
                self._dispatch(unit, c)
            last = todo[-1].seq
            now = time.monotonic()
            for p in self.state.positions.values():
                if p.dirty_since_seq is not None and now - p.last_write_mono >= self.cfg.extremes_flush_s:
                    unit.write_position(p)
                    self.metrics.extremes_writes.inc()
            changed = unit.touched
            if changed or now - self._checkpoint_mono >= CHECKPOINT_S:
                replay_from = self._replay_from(last)
                unit.write_meta(applied_seq=last, replay_from_seq=replay_from, updated_at=self._clock())
                unit.commit()
                self._day_marks.clear()
                self.views.absorb(unit)
                self._db_seq, self._durable_from = last, min(last, replay_from)
                self._checkpoint_mono = now
                self.metrics.applied_seq.set(last)
                if changed:
                    self.metrics.transactions.inc()
                    self.metrics.commit_seconds.observe(time.perf_counter() - started)
                    self._update_gauges()
                else:
                    self.metrics.checkpoints.inc()
            self._seen_seq = last
        except SQLAlchemyError as exc:
            self._failed = exc
            self.metrics.failures.inc()
            log.error("positions store: batch ending at seq %d not committed: %s", todo[-1].seq, exc)
            raise StoreFailed(f"database refused the batch ending at seq {todo[-1].seq}: "
                              f"{str(exc).splitlines()[0]}") from exc
        except BaseException as exc:
            self._failed = exc
            self.metrics.failures.inc()
            log.error("positions store: batch ending at seq %d not committed: %s", todo[-1].seq, exc)
            raise
        finally:
            unit.close()  # rolls back whatever was not committed

    def _dispatch(self, unit: Unit, c: Committed) -> None:
        """One committed message to the module of its concern. Records the database already
        reflects (seq <= applied_seq, seen again in a replay) only feed marks and in-flight intents."""
        st, views = self.state, self.views
        fresh = c.seq > self._db_seq
        match c.msg:
            case PositionsState() as m:
                if marks.on_marks(st, c.seq, m):
                    views.touch(OPEN_POSITIONS, PNL_TODAY)
            case SubmitOrder() as m:
                fills.track_inflight(st, m)
                if fresh:
                    fills.on_intent(st, unit, c.seq, m)
            case RequestExit() | OrderUpdated() as m:
                fills.track_inflight(st, m)
            case OrderFilled() as m if fresh:
                self._stamp_rule(unit, c.seq, m)
                fills.on_fill(st, unit, c.seq, m)
                views.touch(*_FILL_VIEWS)
            case PositionsLedger() as m if fresh:
                marks.on_ledger(st, unit, c, m)
                views.touch(OPEN_POSITIONS)
            case SwitchScope() as m if fresh:
                scopes.on_scope_switch(st, unit, c.seq, m)
                views.touch(ACTIVE_SCOPE, PNL_TODAY)
            case ExchangePositionsReported() as m if fresh:
                reconciliation.on_report(st, unit, c, m)
                views.touch(*_ADOPT_VIEWS)
            case ResolveMismatch() as m if fresh:
                reconciliation.on_resolution(st, unit, c.seq, m)
                views.touch(*_ADOPT_VIEWS)
            case ImportLegacyPositions() as m if fresh:
                on_legacy_import(st, unit, c.seq, m)
                views.touch(LEGACY_IMPORTS, OPEN_POSITIONS, PNL_TODAY)
            case _:
                pass  # heartbeats, telemetry and other documents: nothing the store keeps

    def _replay_from(self, last: int) -> int:
        pending = [p.dirty_since_seq for p in self.state.positions.values() if p.dirty_since_seq is not None]
        return min(pending) - 1 if pending else last

    def _update_gauges(self) -> None:
        counts: dict[tuple[str, str], int] = dict.fromkeys(self._scopes_seen, 0)
        for mode, account, _symbol in self.state.positions:
            counts[(mode, account)] = counts.get((mode, account), 0) + 1
        for (mode, account), n in counts.items():
            self.metrics.open_positions.labels(mode, account).set(n)
        self._scopes_seen = set(counts)
        self.metrics.reconcile_open.set(len(self.state.issues))

    def resume(self, pending_intents: Iterable[Mapping[str, Any]]) -> None:
        """The writer's intents in flight (its snapshotted state) replace ours: after a crash we
        would otherwise forget every intent applied before our replay point, and compare symbols
        whose orders are still working (a false mismatch that blocks entries)."""
        inflight = self.state.inflight
        inflight.clear()
        for i in pending_intents:
            self.state.track_inflight(str(i["intent_id"]), (str(i.get("mode", "SIM")), str(i.get("account", "paper")),
                                                           str(i["symbol"])))

    # --- the day boundary ----------------------------------------------------------------------

    def tick(self) -> None:
        """Roll the P&L day over when a UTC day has ended, recording each open position's last mark
        of the ended day. Database trouble here is logged and retried, never raised."""
        if self._engine is None or self._failed is not None:
            return
        ended = self.views.roll(utc_day(self._clock()))
        if ended is not None:
            self._record_day_end(ended)
        if self._day_marks and time.monotonic() >= self._day_marks_retry:
            unit = Unit(self.engine, self.metrics, self._persisted)
            try:
                self._write_day_marks(unit)
                unit.commit()
                self._day_marks.clear()
            except SQLAlchemyError as exc:
                self._day_marks_retry = time.monotonic() + _DAY_MARKS_RETRY_S
                log.error("positions store: end-of-day marks not written yet (%s); retrying", exc)
            finally:
                unit.close()

    def _stamp_rule(self, unit: Unit, seq: int, f: OrderFilled) -> None:
        """Keep the end-of-day positions to the fills stamped on their day (day_end.py), before
        the fill is applied. Only fills near a day boundary get here past the first test; a
        resent one changes nothing, here as in `fills.on_fill`."""
        key, day, today = (f.mode, f.account, f.symbol), utc_day(f.ts), self.views.day
        early = day > today and key not in self._basis
        moves_basis = day == today and key in self._basis
        late = day == self._ended_day
        if not (early or moves_basis or late) or unit.read(
                FILL_SEEN, k_mode=f.mode, k_account=f.account, k_symbol=f.symbol, k_trade_id=f.trade_id):
            return
        if early:  # the position as it is, before the first fill stamped after its day
            basis = mark_of(today, seq, key, self.state.positions.get(key))
        elif moves_basis:  # a fill of the day, committed after an early one
            basis = self._basis[key].after(f, seq)
        else:  # late: the ended day's end-of-day position moves
            moved = self._ended.get(key, flat_mark(day, seq, key)).after(f, seq)
            self._ended[key] = moved
            write_day_end_marks(unit, [moved])
            return
        self._basis[key] = basis
        write_day_end_marks(unit, [basis], queries.DAY_END_BASIS)

    def _record_day_end(self, day: date) -> None:
        marks = with_basis(day_end_marks(day, self._seen_seq, self.state.positions), self._basis,
                           self.state.positions)
        self._basis = {}
        self._ended_day, self._ended = day, {m.key: m for m in marks}
        self._day_marks += marks
        log.info("UTC day %s ended: P&L day rolled over, %d end-of-day marks recorded", day, len(marks))

    def _write_day_marks(self, unit: Unit) -> None:
        write_day_end_marks(unit, self._day_marks)

    # --- views ---------------------------------------------------------------------------------

    def view(self, key: str) -> Any:
        if key == STORE_STATUS:
            return {"schema_version": self.schema_version, "applied_seq": self._db_seq,
                    "replay_from_seq": self._durable_from, "open_positions": len(self.state.positions),
                    "open_issues": len(self.state.issues), "backend": self.engine.dialect.name,
                    "failed": str(self._failed) if self._failed else None, "pnl_day": self.views.day.isoformat()}
        return self.views.render(key)

    def changed_views(self) -> dict[str, Any]:
        if self._engine is None or self._failed is not None:
            return {}  # memory may hold half a batch; after reopen, what differs is published
        return self.views.changed()


def _record(row: Any, detail: dict[str, Any]) -> DayEndMark:
    """A `day_end_mark` / `day_end_basis` position event read back."""
    return DayEndMark(day=date.fromisoformat(detail["day"]), seq=row.seq, mode=row.mode, account=row.account,
                      symbol=row.symbol, position_id=row.position_id or "", side=row.side or "",
                      qty=row.qty_after or 0.0, entry_price=float(detail.get("entry_price", 0.0)),
                      mark_price=row.price, unrealized=float(detail.get("unrealized", 0.0)))
