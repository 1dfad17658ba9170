"""Liveness alerts with the seed-004 semantics: a pure function of timestamps, thresholds and now.

Per kind (signals, orders, exits, router) with threshold > 0:

- missing timestamp      -> idle, missing[kind] = True, details[kind] = threshold + 1
- unparseable timestamp  -> as missing, and unparseable[kind] = True
- future beyond the skew tolerance -> idle, details[kind] = threshold + 1, clock_skew_s[kind] = seconds ahead
  (we cannot tell when the event happened; a clock that jumped would otherwise mask idleness)
- future within tolerance -> age 0.0 (clocks of two hosts differ a little)
- otherwise              -> details[kind] = age in seconds (>= 0), idle when age > threshold

Liveness disabled -> every flag false and nothing else reported. A threshold <= 0 skips that kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from bus.messages import ExitPipeline, Liveness, LivenessKind, VetoCounters
from config.strategy import LivenessConfig

Stamp = datetime | str | None

# kind -> (threshold field of LivenessConfig, flag field of Liveness)
KINDS: dict[LivenessKind, tuple[str, str]] = {
    "signals": ("max_idle_signals_seconds", "idle_signals"),
    "orders": ("max_idle_orders_seconds", "idle_orders"),
    "exits": ("max_idle_exits_seconds", "idle_exits"),
    "router": ("max_idle_router_events_seconds", "idle_router"),
}


class Unparseable:
    """Marker for a timestamp that is present but cannot be read."""


UNPARSEABLE = Unparseable()


def parse_ts(value: Stamp) -> datetime | Unparseable | None:
    """An aware UTC datetime, None when absent/empty, UNPARSEABLE when present but unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return UNPARSEABLE
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return UNPARSEABLE
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def liveness_stamps(veto: VetoCounters, exits: ExitPipeline) -> dict[LivenessKind, Stamp]:
    """The timestamp each kind is judged by (seed 004: exits by the last exit *trigger*)."""
    return {
        "signals": veto.last_signal_ts,
        "orders": veto.last_order_ts,
        "exits": exits.last_exit_trigger_ts,
        "router": exits.last_router_event_ts,
    }


def compute_liveness(cfg: LivenessConfig, stamps: Mapping[LivenessKind, Stamp], now: datetime) -> Liveness:
    if not cfg.enabled:
        return Liveness(enabled=False)
    flags: dict[str, bool] = {}
    details: dict[LivenessKind, float] = {}
    missing: dict[LivenessKind, bool] = {}
    thresholds: dict[LivenessKind, float] = {}
    skew: dict[LivenessKind, float] = {}
    unparseable: dict[LivenessKind, bool] = {}
    for kind, (threshold_field, flag) in KINDS.items():
        threshold = float(getattr(cfg, threshold_field))
        if threshold <= 0:
            continue
        thresholds[kind] = threshold
        unknown_age = threshold + 1.0
        ts = parse_ts(stamps.get(kind))
        if ts is None or isinstance(ts, Unparseable):
            missing[kind] = True
            if ts is UNPARSEABLE:
                unparseable[kind] = True
            details[kind] = unknown_age
            flags[flag] = True
            continue
        missing[kind] = False
        age = (now - ts).total_seconds()
        if age < 0:
            if -age > cfg.clock_skew_tolerance_seconds:
                skew[kind] = -age
                details[kind] = unknown_age
                flags[flag] = True
                continue
            age = 0.0
        details[kind] = age
        flags[flag] = age > threshold
    return Liveness(
        enabled=True, details=details, missing=missing, thresholds=thresholds, clock_skew_s=skew,
        unparseable=unparseable, **flags,
    )
