"""The dashboard's transport-free facade: bus state in, one `DashboardView` out.

The actor thread feeds it (snapshot, committed messages, hub status); the web thread reads
views. Everything comes from the bus; nothing here touches a file. A view is built at most
once per change (and once a second, since ages move), then shared by every client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from actors.base.halt import ENTRY_HALTS_KEY, EntryHalt
from actors.dashboard.view import (
    ActorView,
    DashboardView,
    ExitHealthPanel,
    HubView,
    KpiPanel,
    LivenessKindView,
    LivenessPanel,
    NavPanel,
    NavPoint,
    PnlTodayPanel,
    PositionsPanel,
    PositionView,
    RouterPanel,
    TradingHeader,
    VetoHeatmap,
)
from bus.messages import (
    STATE_DOCUMENTS,
    ActiveScope,
    Kpis,
    LedgerEntry,
    Liveness,
    LivenessKind,
    Message,
    NavState,
    PnlToday,
    PositionsLedger,
    PositionsState,
    ReconciliationView,
    RiskSnapshot,
    RouterState,
    RuntimeDiagnostics,
    StoredPosition,
    utc_now,
)

log = logging.getLogger(__name__)

NAV_POINTS_KEPT = 20_000
NAV_POINTS_SENT = 1_500
# The diagnostics actor re-sends at least every publish interval (5 s by default).
DIAGNOSTICS_STALE_AFTER_S = 30.0
VIEW_MAX_AGE_S = 1.0
# The positions store's views the page shows (bus/messages/views.py): in the snapshot, then
# published by the hub whenever a commit changes them.
STORE_VIEW_KEYS = ("open_positions", "active_scope", "pnl_today", "reconciliation")
HUB_ACTOR = "state_writer"
LIVENESS_KINDS: tuple[LivenessKind, ...] = ("signals", "orders", "exits", "router")


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def liveness_kind(kind: LivenessKind, live: Liveness) -> LivenessKindView:
    """One row of the liveness card: healthy / idle for N min / never seen (seed 004 §4.3)."""
    threshold = live.thresholds.get(kind)
    idle_s = live.details.get(kind)
    if not live.enabled:
        return LivenessKindView(kind=kind, state="disabled", text="liveness checks disabled")
    if threshold is None:
        return LivenessKindView(kind=kind, state="disabled", text="check off (threshold <= 0)")
    idle = bool(getattr(live, f"idle_{kind}"))
    if live.unparseable.get(kind):
        return LivenessKindView(kind=kind, state="unreadable", threshold_s=threshold,
                                text="timestamp unreadable: counted as idle")
    if live.missing.get(kind):
        return LivenessKindView(kind=kind, state="never_seen", threshold_s=threshold,
                                text="never seen: counted as idle")
    skew = live.clock_skew_s.get(kind)
    if skew is not None:
        return LivenessKindView(kind=kind, state="clock_skew", threshold_s=threshold,
                                text=f"timestamp {_duration(skew)} in the future: counted as idle")
    if idle_s is None:
        return LivenessKindView(kind=kind, state="unknown", threshold_s=threshold, text="no data")
    if idle:
        return LivenessKindView(kind=kind, state="idle", idle_s=idle_s, threshold_s=threshold,
                                text=f"idle for {_duration(idle_s)} (limit {_duration(threshold)})")
    return LivenessKindView(kind=kind, state="healthy", idle_s=idle_s, threshold_s=threshold,
                            text=f"healthy: last {_duration(idle_s)} ago")


@dataclass(frozen=True, slots=True)
class _HubReport:
    synced: bool
    seq: int
    last_seen_mono: float | None
    silent_after_s: float
    detail: str


def nav_points(points: list[NavPoint], gap_s: float, most: int) -> list[NavPoint]:
    """At most `most` points in time order; a point after a silence longer than `gap_s` (in the full
    series, also where thinning skips over it) says so, so the chart shows a gap, not a flat line."""
    gaps = [i > 0 and p.t - points[i - 1].t > gap_s for i, p in enumerate(points)]
    keep = list(range(len(points)))
    if len(points) > most:
        step = len(points) / most
        keep = [int(i * step) for i in range(most - 1)] + [len(points) - 1]
    out, previous = [], 0
    for i in keep:
        gap = any(gaps[previous + 1:i + 1]) if out else False
        out.append(points[i].model_copy(update={"gap_before": gap}) if gap != points[i].gap_before else points[i])
        previous = i
    return out


class DashboardFacade:
    def __init__(self, clock: Callable[[], datetime] = utc_now, *, mode: str = "SIM", network: str = "paper",
                 account: str = "paper", nav_gap_s: float = 60.0) -> None:
        self._clock = clock
        self._nav_gap_s = nav_gap_s
        self._scope = (mode, network, account)
        self._halt = EntryHalt(mode, account)
        self._lock = threading.Lock()
        self._docs: dict[str, Message] = {}
        self._open_positions: list[StoredPosition] | None = None
        self._store_pnl: PnlToday | None = None
        self._active: ActiveScope | None = None
        self._reconciliation: ReconciliationView | None = None
        self._nav: deque[NavPoint] = deque(maxlen=NAV_POINTS_KEPT)
        self._hub_report = _HubReport(False, 0, None, 5.0, "not connected yet")
        self._hub_connected = False
        self._version = 0
        self._cache: tuple[int, float, DashboardView, str] | None = None
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Called (from the feeding thread, outside the lock) after every change; must not block."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # --- fed by the actor ----------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def load_snapshot(self, state: dict[str, Any]) -> None:
        """Replace every document with the hub snapshot's (documents that do not validate are skipped)."""
        with self._lock:
            self._halt.absorb(state.get(ENTRY_HALTS_KEY))
        docs: dict[str, Message] = {}
        for key, raw in state.items():
            cls = STATE_DOCUMENTS.get(key)
            if cls is None or not isinstance(raw, dict):
                continue
            try:
                docs[key] = cls.model_validate(raw)
            except ValidationError as exc:
                log.warning("snapshot document %s does not validate (%s); not shown", key,
                            exc.errors(include_url=False)[0]["msg"])
        history = self._nav_history(state.get("nav_history"))
        with self._lock:
            self._docs = docs
            self._set_views(state)
            if history is not None:
                # The hub keeps the curve, so a restarted dashboard (or a resync) starts with it.
                self._nav.clear()
                self._nav.extend(history)
            nav = docs.get("nav_state")
            if isinstance(nav, NavState):
                self._add_nav_point(nav)
            self._version += 1
        self._changed()

    @staticmethod
    def _nav_history(raw: Any) -> list[NavPoint] | None:
        if not isinstance(raw, list):
            return None
        points = []
        for item in raw:
            try:
                points.append(NavPoint.model_validate(item))
            except ValidationError:
                continue
        return points[-NAV_POINTS_KEPT:]

    def load_views(self, state: dict[str, Any]) -> None:
        """New values of the store's views (any of STORE_VIEW_KEYS; absent keys stay as they were)."""
        with self._lock:
            self._set_views(state)
            self._version += 1
        self._changed()

    def _set_views(self, state: dict[str, Any]) -> None:
        # Each view on its own: one that does not validate keeps its last good value, the others move on.
        for key in STORE_VIEW_KEYS:
            if key not in state:
                continue
            raw = state[key]
            try:
                if key == "open_positions":
                    self._open_positions = [StoredPosition.model_validate(p) for p in raw] if raw is not None else None
                elif key == "active_scope":
                    self._active = ActiveScope.model_validate(raw) if raw is not None else None
                elif key == "pnl_today":
                    self._store_pnl = PnlToday.model_validate(raw) if raw is not None else None
                else:
                    self._reconciliation = ReconciliationView.model_validate(raw) if raw is not None else None
            except (ValidationError, TypeError) as exc:
                log.warning("positions-store view %s does not validate (%s); keeping the last one", key,
                            str(exc).splitlines()[0])

    def apply(self, msg: Message) -> None:
        if self._halt.apply(msg):
            with self._lock:
                self._version += 1
            return
        if msg.STATE_KEY is None:
            return
        with self._lock:
            self._docs[msg.STATE_KEY] = msg
            if isinstance(msg, NavState):
                self._add_nav_point(msg)
            self._version += 1
        self._changed()

    def set_hub(self, synced: bool, seq: int, last_seen_mono: float | None, silent_after_s: float,
                detail: str = "") -> None:
        """The subscriber's view of the hub; `last_seen_mono` is time.monotonic() of its last frame."""
        with self._lock:
            self._hub_report = _HubReport(synced, seq, last_seen_mono, silent_after_s, detail)
            flipped = self._hub_view().connected != self._hub_connected
            if flipped:
                self._version += 1
        if flipped:
            self._changed()

    def _hub_view(self) -> HubView:
        r = self._hub_report
        last_seen = None if r.last_seen_mono is None else max(0.0, time.monotonic() - r.last_seen_mono)
        # Judged when the view is built, not when reported: the actor may be busy re-connecting.
        connected = r.synced and last_seen is not None and last_seen < r.silent_after_s
        detail = "" if connected else r.detail or "no recent frame from the state writer; reconnecting"
        return HubView(connected=connected, seq=r.seq, last_seen_s=last_seen, detail=detail)

    def _add_nav_point(self, nav: NavState) -> None:
        point = NavPoint(t=nav.updated_at.timestamp(), nav=nav.nav_total, peak=nav.peak_nav, dd_pct=nav.dd_pct)
        if self._nav and point.t <= self._nav[-1].t:
            if point.t == self._nav[-1].t:
                self._nav[-1] = point
            return  # an older sample (re-snapshot) never reorders the series
        self._nav.append(point)

    # --- read by the web side ------------------------------------------------------------------

    def view_json(self) -> tuple[int, str]:
        """(version, the view as JSON): serialized once per build and shared by every client."""
        with self._lock:
            cached = self._current()
            return cached[0], cached[3]

    def view(self) -> DashboardView:
        with self._lock:
            return self._current()[2]

    def _current(self) -> tuple[int, float, DashboardView, str]:
        if self._hub_view().connected != self._hub_connected:
            self._version += 1  # the hub went quiet (or came back) since the last view
        cached = self._cache
        if cached is None or cached[0] != self._version or time.monotonic() - cached[1] >= VIEW_MAX_AGE_S:
            view = self._build(self._clock())
            cached = self._cache = (self._version, time.monotonic(), view, view.model_dump_json())
        return cached

    def _doc(self, key: str, cls: type[Message]) -> Any:
        doc = self._docs.get(key)
        return doc if isinstance(doc, cls) else None

    def _build(self, now: datetime) -> DashboardView:
        positions = self._doc("positions_state", PositionsState)
        ledger = self._doc("positions_ledger", PositionsLedger)
        kpis = self._doc("kpis_v7", Kpis)
        nav = self._doc("nav_state", NavState)
        risk = self._doc("risk_snapshot", RiskSnapshot)
        router = self._doc("router_state", RouterState)
        diag = self._doc("runtime_diagnostics", RuntimeDiagnostics)
        hub = self._hub_view()
        self._hub_connected = hub.connected
        mode, network, account = self._scope
        nav_guard = None
        if nav is not None and not nav.sources_ok:
            last = nav.anomalies[-1] if nav.anomalies else None
            seen = f"NAV {last.nav:,.2f} against peak {last.previous_peak:,.2f} ({last.reason})" if last else "NAV"
            nav_guard = (f"{seen} is anomalous: peak NAV is kept and new entries stop (stale_nav). A real deposit "
                         "or withdrawal? Move the peak: v7 nav reset-peak --reason deposit")
        return DashboardView(
            generated_at=now.isoformat().replace("+00:00", "Z"),
            version=self._version,
            trading=TradingHeader(mode=mode, network=network, account=account, halted=self._halt.halted,
                                  halt_detail=self._halt.detail, nav_guard=nav_guard),
            hub=hub,
            positions=self._positions(now, positions, ledger),
            pnl_today=self._pnl_today(),
            nav=self._nav_panel(now, nav),
            kpis=KpiPanel(kpis=kpis, risk=risk, updated_age_s=_age(now, kpis.updated_at) if kpis else None),
            router=RouterPanel(router=router, updated_age_s=_age(now, router.updated_at) if router else None),
            vetoes=self._heatmap(diag),
            exit_health=ExitHealthPanel(
                exit_pipeline=diag.runtime_diagnostics.exit_pipeline if diag else None,
                updated_age_s=_age(now, diag.updated_at) if diag else None,
            ),
            liveness=self._liveness(now, diag, hub.connected),
            reconciliation=self._reconciliation,
        )

    def _pnl_today(self) -> PnlTodayPanel:
        # One path: the store's view as the hub published it (kpis_v7.pnl_today is a copy of it).
        pnl, active = self._store_pnl, self._active
        if pnl is None or not pnl.scopes:
            return PnlTodayPanel()
        name = f"{active.mode}/{active.account}" if active else None
        row = next((s for s in pnl.scopes if active and (s.mode, s.account) == (active.mode, active.account)), None)
        return PnlTodayPanel(scopes=list(pnl.scopes), active=name, total=row.total if row else None)

    def _positions(self, now: datetime, positions: PositionsState | None,
                   ledger: PositionsLedger | None) -> PositionsPanel:
        if positions is None:
            return PositionsPanel()
        entries: dict[tuple[str, str], LedgerEntry] = {}
        for entry in ledger.entries if ledger else []:
            entries.setdefault((entry.symbol, entry.side), entry)
        stored_by_key = {(p.symbol, p.side): p for p in self._open_positions or []}
        rows = []
        for row in positions.positions:
            if row.qty <= 0 or row.side == "FLAT":
                continue
            entry = entries.get((row.symbol, row.side))
            levels = ledger.tp_sl_levels.get(row.symbol) if ledger else None
            stored = stored_by_key.get((row.symbol, row.side))
            tp = (entry.tp if entry else None) or (levels.tp if levels else None) or (stored.tp if stored else None)
            sl = (entry.sl if entry else None) or (levels.sl if levels else None) or (stored.sl if stored else None)
            opened = (entry.opened_at if entry else None) or (stored.entry_time if stored else None)
            rows.append(PositionView(
                symbol=row.symbol, side=row.side, qty=row.qty, entry_price=row.entry_price,
                mark_price=row.mark_price, notional=row.notional, unrealized_pnl=row.unrealized_pnl,
                realized_pnl=row.realized_pnl, tp=tp, sl=sl,
                opened_at=opened.isoformat().replace("+00:00", "Z") if opened else None, age_s=_age(now, opened),
            ))
        return PositionsPanel(rows=rows, updated_age_s=_age(now, positions.updated_at),
                              unrealized_total=sum(r.unrealized_pnl for r in rows))

    def _nav_panel(self, now: datetime, nav: NavState | None) -> NavPanel:
        points = nav_points(list(self._nav), self._nav_gap_s, NAV_POINTS_SENT)
        if nav is None:
            return NavPanel(points=points, gap_after_s=self._nav_gap_s)
        return NavPanel(
            nav_total=nav.nav_total, peak_nav=nav.peak_nav, dd_pct=nav.dd_pct, dd_state=nav.dd_state,
            sources_ok=nav.sources_ok, updated_age_s=_age(now, nav.updated_at), points=points,
            gap_after_s=self._nav_gap_s, anomalies=list(nav.anomalies), anomaly_count=nav.anomaly_count,
        )

    @staticmethod
    def _heatmap(diag: RuntimeDiagnostics | None) -> VetoHeatmap:
        if diag is None:
            return VetoHeatmap()
        vc = diag.runtime_diagnostics.veto_counters
        matrix = {reason: dict(by_symbol) for reason, by_symbol in vc.by_reason_symbol.items()}
        for reason, count in vc.by_reason.items():
            # Counts from before per-symbol counting existed show up as "(any)".
            rest = count - sum(matrix.get(reason, {}).values())
            if rest > 0:
                matrix.setdefault(reason, {})["(any)"] = rest
        reasons = sorted(matrix, key=lambda r: (-vc.by_reason.get(r, 0), r))
        symbols = sorted({s for row in matrix.values() for s in row})
        cells = [[matrix[r].get(s, 0) for s in symbols] for r in reasons]
        return VetoHeatmap(
            reasons=reasons, symbols=symbols, cells=cells, by_reason=dict(vc.by_reason),
            max=max((c for row in cells for c in row), default=0), total_signals=vc.total_signals,
            total_orders=vc.total_orders, total_vetoes=vc.total_vetoes,
        )

    @staticmethod
    def _liveness(now: datetime, diag: RuntimeDiagnostics | None, hub_connected: bool) -> LivenessPanel:
        if diag is None:
            kinds = [LivenessKindView(kind=k, state="unknown", text="diagnostics has not reported yet")
                     for k in LIVENESS_KINDS]
            return LivenessPanel(reported=False, kinds=kinds)
        block = diag.runtime_diagnostics
        age = _age(now, diag.updated_at)
        actors = [ActorView(name=name, **actor.model_dump()) for name, actor in sorted(block.actors.items())]
        if not hub_connected:
            # The document predates the outage; what the dashboard sees itself is more recent.
            actors = [a.model_copy(update={"stale": True, "reason": "no contact from the dashboard"})
                      if a.name == HUB_ACTOR else a for a in actors]
        return LivenessPanel(
            reported=True,
            diagnostics_age_s=age,
            diagnostics_stale=age is None or age > DIAGNOSTICS_STALE_AFTER_S,
            kinds=[liveness_kind(k, block.liveness) for k in LIVENESS_KINDS],
            actors=actors,
            supervisor=block.supervisor,
        )

