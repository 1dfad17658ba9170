"""The sync loop: sample the balance into NAV/AUM, track peak NAV and drawdown through the
anomaly guard, publish nav_state; then bring the mirror up to date from the bus.

An anomalous reading is still published as what the exchange said, with `sources_ok=false`
and the anomaly listed, so the executor treats NAV as unusable (veto `stale_nav`) instead of
sizing on it. With the exchange silent no sample is published: nav_age_s grows instead.
"""

from __future__ import annotations

import logging

from actors.base import Actor
from actors.sync.metrics import SyncMetrics
from actors.sync.mirror import Mirror
from actors.sync.nav_guard import PeakTracker, dd_state_for
from bus.messages import STATE_DOCUMENTS, NavState, PeakResetRecord, ResetNavPeak, utc_now
from bus.subscriber import Update
from config.risk import load_risk_limits
from config.settings import Settings
from exchange.client import connect_exchange
from exchange.errors import ExchangeError

log = logging.getLogger(__name__)

DD_STATE_CODES = {"NORMAL": 0, "CAUTION": 1, "DEFENSIVE": 2}


class Sync(Actor):
    name = "sync"
    default_loop_s = 1.0
    wants_updates = True
    # The mirror carries every document; the hub's last peak reset covers a reset sent while we were down.
    subscribe_keys = (*STATE_DOCUMENTS, "nav_peak_reset")
    subscribe_topics = (ResetNavPeak.TYPE,)

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.limits = load_risk_limits(settings)
        super().__init__(settings, serve_metrics=serve_metrics)
        self.exchange = connect_exchange(settings)
        self.tracker = PeakTracker(self.limits.nav_anomalies)
        self.mirror = Mirror(settings.mirror_path)
        self.m = SyncMetrics(self.registry)
        self.ready = False
        self.peak_reset: PeakResetRecord | None = None  # the reset the current peak comes from
        self.pending_reset: tuple[int, ResetNavPeak] | None = None  # applied at the next NAV reading

    def on_resync(self) -> None:
        assert self.subscriber is not None
        if not self.ready:
            doc = self.subscriber.document("nav_state")
            if isinstance(doc, NavState):
                self.tracker.restore(doc)
                self.peak_reset = doc.peak_reset
                log.info("restored peak NAV %.2f (%d anomalies so far)", doc.peak_nav, doc.anomaly_count)
            self.ready = True
        raw = self.subscriber.snapshot_state.get("nav_peak_reset")
        if isinstance(raw, dict):
            fields = {k: v for k, v in raw.items() if k != "seq"}
            self._take_reset(int(raw["seq"]), ResetNavPeak.model_validate(fields))

    def on_update(self, update: Update) -> None:
        if isinstance(update.msg, ResetNavPeak):
            self._take_reset(update.seq, update.msg)

    def _take_reset(self, seq: int, msg: ResetNavPeak) -> None:
        applied = self.peak_reset.seq if self.peak_reset else 0
        queued = self.pending_reset[0] if self.pending_reset else 0
        if seq > max(applied, queued):
            self.pending_reset = (seq, msg)

    def setup(self) -> None:
        self.every(self.loop_s, self.tick, now=True)

    def tick(self) -> None:
        """Sample NAV (a time series: a timer is its clock) and refresh the mirror."""
        if not self.ready:
            self.status_detail = "waiting for the hub snapshot"
            return
        self._sample()
        assert self.subscriber is not None
        written = self.mirror.sync(self.subscriber.documents)
        self.m.mirror_writes.inc(written)
        self.m.mirror_errors.set(self.mirror.errors)

    def _sample(self) -> None:
        try:
            balance = self.exchange.fetch_balance()
        except ExchangeError as exc:
            self.m.exchange_errors.inc()
            if self.status != "degraded":
                log.warning("exchange not answering (%s); no NAV sample", exc)
            self.status, self.status_detail = "degraded", f"exchange: {exc}"[:500]
            return
        self.status, self.status_detail = "running", ""
        now = utc_now()
        nav = balance.margin_balance
        if self.pending_reset is not None:
            self._apply_reset(nav)
        anomaly = self.tracker.update(nav, now)
        if anomaly is not None:
            self.m.anomalies.labels(anomaly.reason).inc()
            log.warning("NAV %.2f anomalous against peak %.2f (%s); peak kept", nav, anomaly.previous_peak,
                        anomaly.reason)
        dd_pct = self.tracker.drawdown(nav)
        dd_state = dd_state_for(dd_pct, self.limits.drawdown)
        self.publish(NavState(
            # Exact floats, never rounded: every reader derives from these (KPIs, drawdown
            # state, the truth test) and must get the same number the definition gives.
            scope=self.scope, updated_at=now, nav_total=nav, aum=nav,
            wallet_balance=balance.wallet_balance,
            unrealized_pnl=balance.unrealized_pnl, peak_nav=self.tracker.peak, dd_pct=dd_pct,
            dd_state=dd_state, sources_ok=anomaly is None, anomalies=list(self.tracker.anomalies),
            anomaly_count=self.tracker.anomaly_count, peak_reset=self.peak_reset,
        ))
        self.m.samples.inc()
        self.m.nav.set(nav)
        self.m.peak.set(self.tracker.peak)
        self.m.drawdown.set(dd_pct)
        self.m.dd_state.set(DD_STATE_CODES[dd_state])

    def _apply_reset(self, nav: float) -> None:
        assert self.pending_reset is not None
        seq, msg = self.pending_reset
        self.pending_reset = None
        peak = msg.peak_nav if msg.peak_nav is not None else nav
        log.warning("peak NAV reset from %.2f to %.2f by %s (seq %d): %s", self.tracker.peak, peak, msg.operator,
                    seq, msg.reason)
        self.tracker.reset(peak)
        self.peak_reset = PeakResetRecord(seq=seq, ts=msg.ts, peak_nav=peak, reason=msg.reason, operator=msg.operator)
        self.m.peak_resets.inc()

    def teardown(self) -> None:
        self.exchange.close()
