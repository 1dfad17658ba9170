"""Peak NAV and drawdown, guarded against bogus NAV readings (seed 001 §3).

A reading far above the previous peak (more than `max_multiplier_intraday` times it, or more
than `max_gap_abs_usd` above it) is anomalous: it is recorded and counted, and the peak does
not move, so one ghost 37k reading can never become the peak and push drawdown into
DEFENSIVE. With no baseline (peak 0) nothing is anomalous.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Literal

from bus.messages import NavAnomaly, NavState
from config.risk import DrawdownConfig, NavAnomalyConfig
from domain.vocabulary import DdState

ANOMALIES_KEPT = 100


def anomaly_reason(previous_peak: float, new_nav: float, cfg: NavAnomalyConfig) -> Literal["multiplier", "gap"] | None:
    if not cfg.enabled or previous_peak <= 0:
        return None
    if new_nav > previous_peak * cfg.max_multiplier_intraday:
        return "multiplier"
    if new_nav - previous_peak > cfg.max_gap_abs_usd:
        return "gap"
    return None


def is_nav_anomalous(previous_peak: float, new_nav: float, cfg: NavAnomalyConfig) -> bool:
    """True if `new_nav` is likely bogus relative to `previous_peak` (seed 001 §3.1)."""
    return anomaly_reason(previous_peak, new_nav, cfg) is not None


def dd_state_for(dd_pct: float, cfg: DrawdownConfig) -> DdState:
    if dd_pct >= cfg.defensive_pct:
        return "DEFENSIVE"
    if dd_pct >= cfg.caution_pct:
        return "CAUTION"
    return "NORMAL"


class PeakTracker:
    def __init__(self, cfg: NavAnomalyConfig, peak: float = 0.0) -> None:
        self.cfg = cfg
        self.peak = peak
        self.anomalies: deque[NavAnomaly] = deque(maxlen=ANOMALIES_KEPT)
        self.anomaly_count = 0

    def restore(self, doc: NavState) -> None:
        self.peak = doc.peak_nav
        self.anomalies.extend(doc.anomalies)
        self.anomaly_count = doc.anomaly_count

    def update(self, nav: float, ts: datetime) -> NavAnomaly | None:
        """Take one NAV reading; returns the anomaly if it was one (the peak stays)."""
        reason = anomaly_reason(self.peak, nav, self.cfg)
        if reason is not None:
            anomaly = NavAnomaly(ts=ts, nav=nav, previous_peak=self.peak, reason=reason)
            self.anomalies.append(anomaly)
            self.anomaly_count += 1
            return anomaly
        self.peak = max(self.peak, nav)
        return None

    def reset(self, peak: float) -> None:
        """An operator's decision (nav_peak_reset): the peak becomes `peak`, anomalies stay on record."""
        self.peak = peak

    def drawdown(self, nav: float) -> float:
        if self.peak <= 0:
            return 0.0
        return min(1.0, max(0.0, (self.peak - nav) / self.peak))
