"""The positions store: a CommitHook that writes open positions, trades and their audit trail.

`apply(batch)` runs in the writer loop after the journal fsync and before any ACK. Every
batch that changes the store is one transaction, and that transaction also moves
`store_meta.applied_seq` to the batch's last seq; a batch that changes nothing (heartbeats,
marks inside the trade's range) touches no database at all.

Trade extremes and the last mark are exact in memory. They reach the database with every
write of their row (fill, TP/SL change, close) and otherwise at most once per position per
`store.extremes_flush_s`. Until written, `replay_from_seq` stays below the first mark that
moved them. `applied_seq()` tells the writer how far back to keep and replay the journal:
min(applied_seq, replay_from_seq) as committed, so after a crash the marks the database had
not received are re-derived and a trade that later closes has MAE/MFE over its whole life.
Replayed records the database already reflects (seq <= applied_seq) only feed marks, so
nothing is applied twice. Batches the store ignores move the committed seqs forward at most
once per `CHECKPOINT_S`, so the writer can still compact its journal.

If the database refuses a batch, `apply` raises and the store refuses every later batch:
the writer stops ACKing, and retries by `reopen()` (memory reloaded from the database) and a
replay of the journal from `applied_seq()`, the same catch-up a restart does.
Bad input is not a reason to raise: odd fills and unknown positions become audit events
and reconciliation issues.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actors.state_writer.hooks import Committed
from actors.state_writer.store import queries
from actors.state_writer.store.bounds import FillBounds
from actors.state_writer.store.lock import StoreLock
from actors.state_writer.store.metrics import StoreMetrics
from actors.state_writer.store.positions import EntryInfo, Position, TradeClose, apply_fill, open_position
from actors.state_writer.store.reconcile import Mismatch, compare
from actors.state_writer.store.schema import StoreError, make_engine, migrate
from actors.state_writer.store.tables import (
    FillRow,
    OpenPositionRow,
    PositionEventRow,
    ReconciliationIssueRow,
    StoreMeta,
)
from actors.state_writer.store.unit import (
    FILL_SEEN,
    IMPORT_SEEN,
    INSERT_FILL,
    INSERT_IMPORT,
    INSERT_INTENT,
    INTENT_BY_ID,
    Issue,
    Unit,
    position_from_row,
)
from bus.messages import (
    ActiveScope,
    ExchangePositionsReported,
    ImportLegacyPositions,
    OrderFilled,
    OrderUpdated,
    PositionsLedger,
    PositionsState,
    ReconciliationIssue,
    ReconciliationView,
    ReportedPosition,
    RequestExit,
    ResolveMismatch,
    ScopeKey,
    SubmitOrder,
    SwitchScope,
    SymbolKey,
)
from config.settings import Settings

log = logging.getLogger(__name__)

OPEN_POSITIONS = "open_positions"
ACTIVE_SCOPE = "active_scope"
RECONCILIATION = "reconciliation"
PNL_TODAY = "pnl_today"
TRADES_TODAY = "trades_today"
LEGACY_IMPORTS = "legacy_imports"
STORE_STATUS = "store_status"

_INTENT_CACHE = 4096
_INFLIGHT_MAX = 10_000
CHECKPOINT_S = 10.0  # at most this often, a batch the store ignores still records its seq

Key = tuple[str, str, str]


class StoreFailed(StoreError):
    """An earlier batch could not be committed; nothing more is applied until `reopen()` (or a restart)."""


class PositionStore:
    keys = (OPEN_POSITIONS, ACTIVE_SCOPE, RECONCILIATION, PNL_TODAY, TRADES_TODAY, LEGACY_IMPORTS, STORE_STATUS)

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.url = settings.database_url
        self.cfg = settings.store
        self.metrics = StoreMetrics(registry or CollectorRegistry())
        self._default_scope = (settings.mode, settings.account)
        self._engine: Engine | None = None
        self._lock: StoreLock | None = None
        self._scopes_seen: set[tuple[str, str]] = set()  # gauges to zero when a scope empties
        self._reset()
        self._handlers: dict[str, Callable[[Unit, Committed], None]] = {
            SubmitOrder.TYPE: self._on_intent,
            OrderFilled.TYPE: self._on_fill,
            PositionsLedger.TYPE: self._on_ledger,
            SwitchScope.TYPE: self._on_scope_switch,
            ExchangePositionsReported.TYPE: self._on_report,
            ResolveMismatch.TYPE: self._on_resolution,
            ImportLegacyPositions.TYPE: self._on_legacy_import,
        }

    def _reset(self) -> None:
        """Everything held in memory, as before `open()` loads it from the database."""
        mode, account = self._default_scope
        self.active = ActiveScope(mode=mode, account=account, since_seq=0)  # type: ignore[arg-type]
        self.positions: dict[Key, Position] = {}
        self.issues: dict[Key, Issue] = {}
        self.last_report_seq: dict[str, int] = {}
        self.schema_version = 0
        self._persisted: set[Key] = set()
        self._intents: OrderedDict[str, EntryInfo] = OrderedDict()
        self._inflight: OrderedDict[str, Key] = OrderedDict()  # intent id -> scope and symbol, until done
        self._last_fill_ts: dict[Key, datetime] = {}
        self._db_seq = 0  # store_meta.applied_seq as committed
        self._durable_from = 0  # min(applied_seq, replay_from_seq) as committed
        self._seen_seq = 0  # last seq applied in memory
        self._checkpoint_mono = 0.0
        self._failed: BaseException | None = None

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
        log.info("positions store open: %s schema v%d applied_seq=%d open=%d issues=%d active=%s/%s",
                 self._safe_url(), self.schema_version, self._db_seq, len(self.positions), len(self.issues),
                 self.active.mode, self.active.account)

    def reopen(self) -> None:
        """After a failed commit: forget memory (it may hold half of that batch) and load the
        database again, as a restart would; the writer then replays the journal after `applied_seq()`."""
        self.close()
        self._reset()
        self.open()

    def _safe_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def _load(self) -> None:
        with Session(self.engine) as s, s.begin():
            meta = s.get(StoreMeta, 1)
            if meta is None:
                now = datetime.now(UTC)
                s.execute(insert(StoreMeta).values(
                    id=1, applied_seq=0, replay_from_seq=0, active_mode=self.active.mode,
                    active_account=self.active.account, active_since_seq=0, updated_at=now))
                applied, replay_from = 0, 0
            else:
                applied, replay_from = meta.applied_seq, meta.replay_from_seq
                self.active = ActiveScope(mode=meta.active_mode, account=meta.active_account,  # type: ignore[arg-type]
                                          since_seq=meta.active_since_seq)
            for row in s.scalars(select(OpenPositionRow)):
                p = position_from_row(row)
                self.positions[p.key] = p
                self._persisted.add(p.key)
            for row in s.scalars(select(ReconciliationIssueRow).where(ReconciliationIssueRow.status == "open")):
                issue = Issue.from_row(row)
                self.issues[issue.key] = issue
            last_fills = (select(FillRow.mode, FillRow.account, FillRow.symbol, func.max(FillRow.ts))
                          .group_by(FillRow.mode, FillRow.account, FillRow.symbol))
            for mode, account, symbol, ts in s.execute(last_fills):
                self._last_fill_ts[(mode, account, symbol)] = ts  # max() keeps the column's UTC type
            checked = (select(PositionEventRow.mode, PositionEventRow.account, PositionEventRow.seq)
                       .where(PositionEventRow.kind == "reconcile_checked").order_by(PositionEventRow.seq))
            for mode, account, seq in s.execute(checked):
                self.last_report_seq[f"{mode}/{account}"] = seq
        self._db_seq = applied
        self._durable_from = self._seen_seq = min(applied, replay_from)
        self._checkpoint_mono = time.monotonic()
        self.metrics.applied_seq.set(applied)
        self._update_gauges()

    def close(self) -> None:
        """Write whatever extremes are pending (unless a commit failed), then let go of the database."""
        if self._engine is None:
            return
        try:
            if self._failed is None:
                dirty = [p for p in self.positions.values() if p.dirty_since_seq is not None]
                if dirty or self._seen_seq > self._db_seq:
                    unit = Unit(self.engine, self.metrics, self._persisted)
                    try:
                        for p in dirty:
                            unit.write_position(p)
                        unit.write_meta(applied_seq=self._seen_seq, replay_from_seq=self._seen_seq,
                                        updated_at=datetime.now(UTC))
                        unit.commit()
                    finally:
                        unit.close()
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
        return FillBounds(self.positions)

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
            for c in todo:
                if c.msg.TYPE == PositionsState.TYPE:
                    self._on_marks(c)
                    continue
                self._track_inflight(c.msg)
                if c.seq > self._db_seq:
                    handler = self._handlers.get(c.msg.TYPE)
                    if handler is not None:
                        handler(unit, c)
            last = todo[-1].seq
            now = time.monotonic()
            for p in self.positions.values():
                if p.dirty_since_seq is not None and now - p.last_write_mono >= self.cfg.extremes_flush_s:
                    unit.write_position(p)
                    self.metrics.extremes_writes.inc()
            changed = unit.touched
            if changed or now - self._checkpoint_mono >= CHECKPOINT_S:
                replay_from = self._replay_from(last)
                unit.write_meta(applied_seq=last, replay_from_seq=replay_from, updated_at=datetime.now(UTC))
                unit.commit()
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

    def _replay_from(self, last: int) -> int:
        pending = [p.dirty_since_seq for p in self.positions.values() if p.dirty_since_seq is not None]
        return min(pending) - 1 if pending else last

    def _update_gauges(self) -> None:
        counts: dict[tuple[str, str], int] = dict.fromkeys(self._scopes_seen, 0)
        for mode, account, _symbol in self.positions:
            counts[(mode, account)] = counts.get((mode, account), 0) + 1
        for (mode, account), n in counts.items():
            self.metrics.open_positions.labels(mode, account).set(n)
        self._scopes_seen = set(counts)
        self.metrics.reconcile_open.set(len(self.issues))

    # --- marks and trade extremes --------------------------------------------------------------

    def _scope_of(self, msg: PositionsState | PositionsLedger, seq: int) -> tuple[str, str] | None:
        """The scope a snapshot or ledger is for: its own, else the active one (not older than the switch)."""
        if msg.mode is not None and msg.account is not None:
            return msg.mode, msg.account
        if seq <= self.active.since_seq:
            return None
        return self.active.mode, self.active.account

    def _on_marks(self, c: Committed) -> None:
        """Marks widen the positions' extremes (exact, in memory)."""
        msg: PositionsState = c.msg  # type: ignore[assignment]
        scope = self._scope_of(msg, c.seq)
        if scope is None:
            return
        mode, account = scope
        for row in msg.positions:
            p = self.positions.get((mode, account, row.symbol))
            # A mark older than the position belongs to an earlier trade (possible only in replay).
            if p is None or row.mark_price <= 0 or c.seq <= p.opened_seq:
                continue
            moved = p.mark_price != row.mark_price
            p.mark_price = row.mark_price
            if (p.observe(row.mark_price) or moved) and p.dirty_since_seq is None:
                p.dirty_since_seq = c.seq

    # --- orders in flight (what a reconciliation report cannot have seen settled) ---------------

    def _track_inflight(self, msg: Any) -> None:
        if isinstance(msg, SubmitOrder | RequestExit):
            self._inflight[msg.intent_id] = (msg.mode, msg.account, msg.symbol)
            while len(self._inflight) > _INFLIGHT_MAX:
                self._inflight.popitem(last=False)
        elif isinstance(msg, OrderUpdated) and msg.intent_done:
            self._inflight.pop(msg.intent_id, None)

    def resume(self, pending_intents: Iterable[Mapping[str, Any]]) -> None:
        """The writer's intents in flight (its snapshotted state) replace ours: after a crash we
        would otherwise forget every intent applied before our replay point, and compare symbols
        whose orders are still working (a false mismatch that blocks entries)."""
        self._inflight.clear()
        for i in pending_intents:
            self._inflight[str(i["intent_id"])] = (str(i.get("mode", "SIM")), str(i.get("account", "paper")),
                                                   str(i["symbol"]))
        while len(self._inflight) > _INFLIGHT_MAX:
            self._inflight.popitem(last=False)

    def _unsettled(self, r: ExchangePositionsReported) -> set[str]:
        """Symbols whose exchange answer may predate what the store has, or what is on its way."""
        busy = {sym for (m, a, sym) in self._inflight.values() if (m, a) == (r.mode, r.account)}
        for sym in r.symbols:
            last = self._last_fill_ts.get((r.mode, r.account, sym))
            if last is not None and last > r.ts:
                busy.add(sym)
        return busy & set(r.symbols)

    # --- intents and fills ---------------------------------------------------------------------

    def _on_intent(self, unit: Unit, c: Committed) -> None:
        i: SubmitOrder = c.msg  # type: ignore[assignment]
        if unit.read(INTENT_BY_ID, k_id=i.intent_id) is not None:
            return  # a re-sent intent with a new sseq; the first one stands
        unit.write(INSERT_INTENT, {
            "intent_id": i.intent_id, "mode": i.mode, "account": i.account, "symbol": i.symbol, "side": i.side,
            "qty": i.qty, "purpose": i.purpose, "reduce_only": i.reduce_only, "position_id": i.position_id,
            "tp": i.tp, "sl": i.sl, "ttl_ts": i.ttl_ts, "arrival_mid": i.arrival_mid, "signal_id": i.signal_id,
            "ts": i.ts, "seq": c.seq})
        self._remember_intent(i.intent_id, EntryInfo(
            position_id=i.position_id or i.intent_id, tp=i.tp, sl=i.sl, ttl_ts=i.ttl_ts, intent_id=i.intent_id,
            signal_id=i.signal_id, arrival_mid=i.arrival_mid))

    def _remember_intent(self, intent_id: str, info: EntryInfo) -> None:
        self._intents[intent_id] = info
        self._intents.move_to_end(intent_id)
        while len(self._intents) > _INTENT_CACHE:
            self._intents.popitem(last=False)

    def _entry_info(self, unit: Unit, f: OrderFilled) -> EntryInfo:
        info = self._intents.get(f.intent_id)
        if info is None:
            row = unit.read(INTENT_BY_ID, k_id=f.intent_id)
            if row is not None:
                info = EntryInfo(position_id=row.position_id or row.intent_id, tp=row.tp, sl=row.sl,
                                 ttl_ts=row.ttl_ts, intent_id=row.intent_id, signal_id=row.signal_id,
                                 arrival_mid=row.arrival_mid)
                self._remember_intent(f.intent_id, info)
        if info is None:  # a fill whose intent never reached the hub: open it anyway, without levels
            info = EntryInfo(position_id=f.position_id or f.intent_id, intent_id=f.intent_id,
                             arrival_mid=f.arrival_mid)
        return info

    def _on_fill(self, unit: Unit, c: Committed) -> None:
        f: OrderFilled = c.msg  # type: ignore[assignment]
        dup = unit.read(FILL_SEEN, k_mode=f.mode, k_account=f.account, k_symbol=f.symbol, k_trade_id=f.trade_id)
        if dup is not None:
            self.metrics.fills.labels("duplicate").inc()
            log.info("fill %s %s/%s %s already applied; ignoring the resend (seq %d)",
                     f.trade_id, f.mode, f.account, f.symbol, c.seq)
            return
        key = (f.mode, f.account, f.symbol)
        if not math.isfinite(f.qty * f.price * 2.0):  # sums of such a fill would overflow to inf
            self.metrics.fills.labels("anomaly").inc()
            unit.event("fill_anomaly", c.seq, f.ts, mode=f.mode, account=f.account, symbol=f.symbol,
                       trade_id=f.trade_id, reason="qty x price overflows; not applied", fill_qty=f.qty,
                       fill_price=f.price)
            return
        entry = self._entry_info(unit, f)
        result = apply_fill(
            self.positions.get(key), mode=f.mode, account=f.account, symbol=f.symbol, side=f.side, qty=f.qty,
            price=f.price, fee=f.fee, reduce_only=f.reduce_only, when=f.ts, seq=c.seq, entry=entry)
        unit.write(INSERT_FILL, {
            "mode": f.mode, "account": f.account, "symbol": f.symbol, "trade_id": f.trade_id, "order_id": f.order_id,
            "intent_id": f.intent_id, "side": f.side, "qty": f.qty, "price": f.price, "fee": f.fee,
            "reduce_only": f.reduce_only, "ts": f.ts, "seq": c.seq})
        for ch in result.changes:
            unit.event(ch.kind, c.seq, f.ts, mode=f.mode, account=f.account, symbol=f.symbol,
                       position_id=ch.position_id, trade_id=f.trade_id, side=ch.side, qty_before=ch.qty_before,
                       qty_after=ch.qty_after, price=ch.price, realized=ch.realized, fee=ch.fee,
                       intent_id=f.intent_id, order_id=f.order_id, fill_side=f.side, liquidity=f.liquidity,
                       exchange_realized=f.realized_pnl)
        if result.closed is not None:
            unit.record_trade(result.closed)
        if result.position is not None:
            self.positions[key] = result.position
            unit.write_position(result.position)
        else:
            self.positions.pop(key, None)
            unit.delete_position(key)
        last = self._last_fill_ts.get(key)
        self._last_fill_ts[key] = f.ts if last is None else max(last, f.ts)
        if result.anomaly is None:
            self.metrics.fills.labels("applied").inc()
            return
        self.metrics.fills.labels("anomaly").inc()
        unaccounted_fee = f.fee - sum(ch.fee for ch in result.changes)
        log.warning("fill %s %s/%s %s: %s", f.trade_id, f.mode, f.account, f.symbol, result.anomaly)
        unit.event("fill_anomaly", c.seq, f.ts, mode=f.mode, account=f.account, symbol=f.symbol,
                   trade_id=f.trade_id, price=f.price, fee=unaccounted_fee, reason=result.anomaly,
                   fill_side=f.side, fill_qty=f.qty, reduce_only=f.reduce_only)
        pos = result.position
        self._raise_issue(unit, c.seq, f.ts, Issue(
            0, f.mode, f.account, f.symbol, "fill_anomaly", self.cfg.reconcile_policy,
            pos.side if pos else None, pos.qty if pos else 0.0, None, 0.0, None, None,
            f"trade {f.trade_id}: {result.anomaly}", c.seq, c.seq, f.ts))

    # --- TP/SL from the ledger ------------------------------------------------------------------

    def _on_ledger(self, unit: Unit, c: Committed) -> None:
        """TP/SL/TTL changes of the ledger's positions. A missing level never erases one."""
        msg: PositionsLedger = c.msg  # type: ignore[assignment]
        scope = self._scope_of(msg, c.seq)
        if scope is None:
            return
        mode, account = scope
        for entry in msg.entries:
            p = self.positions.get((mode, account, entry.symbol))
            if p is None or p.position_id != entry.position_id:
                continue
            levels = msg.tp_sl_levels.get(entry.symbol)
            tp = entry.tp if entry.tp is not None else (levels.tp if levels else None)
            sl = entry.sl if entry.sl is not None else (levels.sl if levels else None)
            changes: dict[str, list[Any]] = {}
            if tp is not None and tp != p.tp:
                changes["tp"] = [p.tp, tp]
                p.tp = tp
            if sl is not None and sl != p.sl:
                changes["sl"] = [p.sl, sl]
                p.sl = sl
            if entry.ttl_ts is not None and entry.ttl_ts != p.ttl_ts:
                changes["ttl_ts"] = [p.ttl_ts, entry.ttl_ts]
                p.ttl_ts = entry.ttl_ts
            if not changes:
                continue
            p.updated_seq, p.updated_at = c.seq, msg.updated_at
            unit.event("tp_sl_change", c.seq, msg.updated_at, mode=mode, account=account, symbol=p.symbol,
                       position_id=p.position_id, side=p.side, qty_before=p.qty, qty_after=p.qty, source=c.src,
                       **changes)
            unit.write_position(p)

    # --- scopes --------------------------------------------------------------------------------

    def _on_scope_switch(self, unit: Unit, c: Committed) -> None:
        msg: SwitchScope = c.msg  # type: ignore[assignment]
        # Marks after the switch belong to the new scope: write the old scope's extremes now.
        for p in self.positions.values():
            if p.dirty_since_seq is not None:
                unit.write_position(p)
        before = self.active
        self.active = ActiveScope(mode=msg.mode, account=msg.account, since_seq=c.seq)
        unit.write_meta(active_mode=msg.mode, active_account=msg.account, active_since_seq=c.seq)
        open_here = sum(1 for (m, a, _s) in self.positions if (m, a) == (msg.mode, msg.account))
        unit.event("scope_switch", c.seq, msg.ts, mode=msg.mode, account=msg.account,
                   previous=f"{before.mode}/{before.account}", requested_by=msg.requested_by, reason=msg.reason,
                   open_positions=open_here)

    # --- reconciliation ------------------------------------------------------------------------

    def _on_report(self, unit: Unit, c: Committed) -> None:
        r: ExchangePositionsReported = c.msg  # type: ignore[assignment]
        if not r.exchange_ok:
            # Missing exchange data is not "flat": nothing is compared and nothing changes.
            self.metrics.reconcile_reports.labels("exchange_unavailable").inc()
            unit.event("reconcile_unavailable", c.seq, r.ts, mode=r.mode, account=r.account, trigger=r.trigger,
                       error=r.error, source=c.src)
            return
        self.metrics.reconcile_reports.labels("compared").inc()
        in_scope = {s: p for (m, a, s), p in self.positions.items() if (m, a) == (r.mode, r.account)}
        unsettled = self._unsettled(r)
        if unsettled:  # compared next time; until then they keep whatever issue they had
            r = r.model_copy(update={
                "symbols": [s for s in r.symbols if s not in unsettled],
                "positions": [p for p in r.positions if p.symbol not in unsettled]})
        mismatches, agreed = compare(in_scope, r, self.cfg.qty_tolerance)
        for symbol in agreed:
            issue = self.issues.get((r.mode, r.account, symbol))
            if issue is not None:
                self._resolve(unit, issue, c.seq, r.ts, "agreed", c.src, note="store and exchange agree again")
        policy = self.cfg.reconcile_policy
        for mm in mismatches:
            self._on_mismatch(unit, c, r, mm, policy)
        self.last_report_seq[f"{r.mode}/{r.account}"] = c.seq
        unit.event("reconcile_checked", c.seq, r.ts, mode=r.mode, account=r.account, trigger=r.trigger,
                   source=c.src, symbols=len(r.symbols), mismatches=[f"{m.symbol}:{m.kind}" for m in mismatches],
                   unsettled=sorted(unsettled), policy=policy)

    def _on_mismatch(self, unit: Unit, c: Committed, r: ExchangePositionsReported, mm: Mismatch, policy: str) -> None:
        ex = mm.exchange
        issue = Issue(0, r.mode, r.account, mm.symbol, mm.kind, policy, mm.store.side if mm.store else None,
                      mm.store.qty if mm.store else 0.0, ex.side if ex else None, ex.qty if ex else 0.0,
                      ex.entry_price if ex else None, ex.mark_price if ex else None, mm.detail(), c.seq, c.seq, r.ts)
        existing = self.issues.get(issue.key)
        if policy == "adopt_exchange" and existing is not None and existing.same_as(issue):
            # Adopt only what two reports in a row agree on: one exchange answer can be stale.
            self._adopt(unit, c.seq, r.ts, r.mode, r.account, mm.symbol, ex, decided_by=f"policy ({c.src})")
            self._resolve(unit, existing, c.seq, r.ts, "adopt_exchange", "policy",
                          note=f"confirmed by the report at seq {c.seq}")
            return
        self._raise_issue(unit, c.seq, r.ts, issue)

    def _raise_issue(self, unit: Unit, seq: int, ts: datetime, issue: Issue) -> None:
        """Record a new or changed mismatch; a repeat of the same one only moves last_seen_seq."""
        existing = self.issues.get(issue.key)
        if existing is not None and existing.same_as(issue):
            existing.last_seen_seq = seq
            unit.update_issue(existing)
            return
        self.metrics.reconcile_mismatches.labels(issue.kind, issue.policy).inc()
        if existing is not None:
            issue.row_id, issue.opened_seq, issue.opened_at = existing.row_id, existing.opened_seq, existing.opened_at
            issue.policy = existing.policy if existing.policy == "halt" else issue.policy
            unit.update_issue(issue)
        else:
            issue.row_id = unit.insert_issue(issue)
        self.issues[issue.key] = issue
        log.warning("reconciliation %s/%s %s: %s (%s), policy %s", issue.mode, issue.account, issue.symbol,
                    issue.kind, issue.detail, issue.policy)
        action = {"halt": "halt scope", "adopt_exchange": "block new entries; adopt if the next report agrees"}
        unit.event("reconcile_mismatch", seq, ts, mode=issue.mode, account=issue.account, symbol=issue.symbol,
                   kind=issue.kind, policy=issue.policy, detail=issue.detail,
                   action=action.get(issue.policy, "block new entries"))

    def _resolve(self, unit: Unit, issue: Issue, seq: int, ts: datetime, resolution: str, by: str,
                 note: str = "") -> None:
        unit.resolve_issue(issue, seq, resolution, by)
        self.issues.pop(issue.key, None)
        unit.event("reconcile_resolved", seq, ts, mode=issue.mode, account=issue.account, symbol=issue.symbol,
                   kind=issue.kind, resolution=resolution, resolved_by=by, note=note, opened_seq=issue.opened_seq)

    def _adopt(self, unit: Unit, seq: int, ts: datetime, mode: str, account: str, symbol: str,
               ex: ReportedPosition | None, decided_by: str) -> None:
        """Make the store say what the exchange said. Never invents realized PnL for size it did not see."""
        key = (mode, account, symbol)
        p = self.positions.get(key)
        if p is not None and ex is not None and p.side == ex.side:
            before = p.qty
            p.qty, p.entry_price = ex.qty, ex.entry_price
            p.peak_qty = max(p.peak_qty, ex.qty)
            if ex.mark_price:
                p.mark_price = ex.mark_price
                p.observe(ex.mark_price)
            p.updated_seq, p.updated_at = seq, ts
            unit.write_position(p)
            unit.event("reconcile_adjust", seq, ts, mode=mode, account=account, symbol=symbol,
                       position_id=p.position_id, side=p.side, qty_before=before, qty_after=p.qty,
                       price=ex.entry_price, decided_by=decided_by)
            return
        if p is not None:
            exit_price = p.mark_price or p.entry_price
            realized = (exit_price - p.entry_price) * p.qty * p.direction
            before = p.qty
            p.realized_pnl += realized
            p.exit_qty_total += p.qty
            p.exit_notional += p.qty * exit_price
            p.observe(exit_price)
            unit.event("reconcile_close", seq, ts, mode=mode, account=account, symbol=symbol,
                       position_id=p.position_id, side=p.side, qty_before=before, qty_after=0.0, price=exit_price,
                       realized=realized, decided_by=decided_by, note="exit price estimated from the last mark")
            unit.record_trade(TradeClose(p, ts, seq, "reconcile_adopt"))
            self.positions.pop(key, None)
            unit.delete_position(key)
        if ex is not None:
            info = EntryInfo(position_id=f"adopted:{mode}:{account}:{symbol}:{seq}")
            new = open_position(mode, account, symbol, ex.side, ex.qty, ex.entry_price, ts, seq, info,
                                source="reconcile")
            if ex.mark_price:
                new.mark_price = ex.mark_price
                new.observe(ex.mark_price)
            self.positions[key] = new
            unit.write_position(new)
            unit.event("reconcile_open", seq, ts, mode=mode, account=account, symbol=symbol,
                       position_id=new.position_id, side=new.side, qty_before=0.0, qty_after=new.qty,
                       price=ex.entry_price, decided_by=decided_by)

    def _on_resolution(self, unit: Unit, c: Committed) -> None:
        r: ResolveMismatch = c.msg  # type: ignore[assignment]
        issue = self.issues.get((r.mode, r.account, r.symbol))
        common = {"mode": r.mode, "account": r.account, "symbol": r.symbol}
        if issue is None:
            unit.event("resolution_ignored", c.seq, r.ts, **common, action=r.action, operator=r.operator,
                       note=r.note, reason="no open issue for this symbol")
            return
        if r.action == "adopt_exchange":
            if issue.kind == "fill_anomaly":
                unit.event("resolution_refused", c.seq, r.ts, **common, action=r.action, operator=r.operator,
                           reason="this issue carries no exchange data; wait for a reconciliation report or "
                                  "use keep_store")
                return
            ex = None
            if issue.exchange_side is not None and issue.exchange_qty > 0 and issue.exchange_entry_price:
                ex = ReportedPosition(symbol=r.symbol, side=issue.exchange_side, qty=issue.exchange_qty,  # type: ignore[arg-type]
                                      entry_price=issue.exchange_entry_price, mark_price=issue.exchange_mark_price)
            self._adopt(unit, c.seq, r.ts, r.mode, r.account, r.symbol, ex, decided_by=f"operator {r.operator}")
        self._resolve(unit, issue, c.seq, r.ts, r.action, r.operator, note=r.note)

    # --- legacy import -------------------------------------------------------------------------

    def _on_legacy_import(self, unit: Unit, c: Committed) -> None:
        m: ImportLegacyPositions = c.msg  # type: ignore[assignment]
        common = {"mode": m.mode, "account": m.account}
        if unit.read(IMPORT_SEEN, k_digest=m.digest) is not None:
            unit.event("legacy_import_repeat", c.seq, m.ts, **common, digest=m.digest, source_path=m.source_path,
                       note="this file was imported before; nothing changed")
            return
        imported = skipped = 0
        for row in m.positions:
            key = (m.mode, m.account, row.symbol)
            existing = self.positions.get(key)
            if existing is not None:
                skipped += 1
                unit.event("legacy_import_skipped", c.seq, m.ts, **common, symbol=row.symbol,
                           position_id=existing.position_id, side=row.side, qty_before=existing.qty,
                           qty_after=existing.qty, price=row.entry_price, digest=m.digest,
                           reason="the store already has an open position for this symbol")
                continue
            info = EntryInfo(position_id=f"legacy:{m.digest[:12]}:{row.symbol}", tp=row.tp, sl=row.sl)
            p = open_position(m.mode, m.account, row.symbol, row.side, row.qty, row.entry_price,
                              row.opened_at or m.source_updated, c.seq, info, source="legacy_import")
            if row.mark_price:
                p.mark_price = row.mark_price
                p.observe(row.mark_price)
            self.positions[key] = p
            unit.write_position(p)
            imported += 1
            unit.event("legacy_import", c.seq, m.ts, **common, symbol=row.symbol, position_id=p.position_id,
                       side=p.side, qty_before=0.0, qty_after=p.qty, price=p.entry_price, digest=m.digest,
                       source_path=m.source_path, source_format=m.source_format)
        unit.write(INSERT_IMPORT, {
            "digest": m.digest, "source_path": m.source_path, "mode": m.mode, "account": m.account,
            "imported": imported, "skipped": skipped, "seq": c.seq, "imported_at": m.ts})

    # --- views ---------------------------------------------------------------------------------

    def view(self, key: str) -> Any:
        if key == OPEN_POSITIONS:
            return [p.to_view().model_dump(mode="json") for _k, p in sorted(self.positions.items())]
        if key == ACTIVE_SCOPE:
            return self.active.model_dump(mode="json")
        if key == RECONCILIATION:
            return self.reconciliation_view().model_dump(mode="json")
        if key == STORE_STATUS:
            return {"schema_version": self.schema_version, "applied_seq": self._db_seq,
                    "replay_from_seq": self._durable_from, "open_positions": len(self.positions),
                    "open_issues": len(self.issues), "backend": self.engine.dialect.name,
                    "failed": str(self._failed) if self._failed else None}
        try:
            with Session(self.engine) as s:
                day = queries.utc_day()
                if key == PNL_TODAY:
                    return queries.pnl_for_day(s, day, self.positions.values()).model_dump(mode="json")
                if key == TRADES_TODAY:
                    return [t.model_dump(mode="json") for t in queries.trades_for_day(s, day)]
                if key == LEGACY_IMPORTS:
                    return [r.model_dump(mode="json") for r in queries.legacy_imports(s)]
        except SQLAlchemyError as exc:
            # A read that fails must not stop the writer; the client sees "unavailable".
            log.error("positions store: view %s unavailable: %s", key, exc)
            return None
        raise KeyError(key)

    def reconciliation_view(self) -> ReconciliationView:
        issues = [
            ReconciliationIssue(
                mode=i.mode, account=i.account, symbol=i.symbol, kind=i.kind, policy=i.policy,  # type: ignore[arg-type]
                store_side=i.store_side, store_qty=i.store_qty, exchange_side=i.exchange_side,  # type: ignore[arg-type]
                exchange_qty=i.exchange_qty, exchange_entry_price=i.exchange_entry_price,
                exchange_mark_price=i.exchange_mark_price, detail=i.detail, opened_seq=i.opened_seq,
                last_seen_seq=i.last_seen_seq, opened_at=i.opened_at)
            for _k, i in sorted(self.issues.items())
        ]
        halted = sorted({(i.mode, i.account) for i in issues if i.policy == "halt"})
        return ReconciliationView(
            policy=self.cfg.reconcile_policy, issues=issues,
            blocked=[SymbolKey(mode=i.mode, account=i.account, symbol=i.symbol) for i in issues],
            halted=[ScopeKey(mode=m, account=a) for m, a in halted],  # type: ignore[arg-type]
            last_report_seq=dict(self.last_report_seq))
