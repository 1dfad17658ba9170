"""Process liveness: each actor's last heartbeat, and supervisord's view when it is reachable.

An actor is stale when its last heartbeat is older than `missed_intervals` x its own
announced interval, when its last heartbeat said "stopping", when it never sent one but
supervisord runs it, or when its heartbeat is stamped in the future beyond the skew
tolerance. supervisord BACKOFF/FATAL is a crash loop. When supervisord cannot be asked,
`supervisor_state` stays None (unknown): never read as "RUNNING".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from bus.messages import ActorLiveness, Heartbeat

log = logging.getLogger(__name__)

CRASH_LOOP_STATES = frozenset({"BACKOFF", "FATAL"})
# supervisord states in which the program is not running, whatever its last heartbeat said
NOT_RUNNING_STATES = frozenset({"STOPPED", "EXITED", "FATAL", "BACKOFF", "STOPPING"})
HUB = "state_writer"


@dataclass(slots=True)
class _Seen:
    ts: datetime
    interval_s: float
    status: str
    pid: int | None
    # The heartbeat's own account of its status: a degraded gateway says why (venue ban, stream
    # down), and that reason must reach runtime_diagnostics and the dashboard, not only its log.
    detail: str = ""


class ProcessWatch:
    def __init__(self, missed_intervals: int, skew_tolerance_s: float) -> None:
        self.missed_intervals = missed_intervals
        self.skew_tolerance_s = skew_tolerance_s
        self._seen: dict[str, _Seen] = {}
        self._supervisor: dict[str, str] | None = None

    def restore(self, heartbeats: Any) -> None:
        """Seed from the hub snapshot's `heartbeats` key: {actor: last Heartbeat as sent}."""
        if not isinstance(heartbeats, dict):
            return
        for actor, raw in heartbeats.items():
            if not isinstance(raw, dict):
                continue
            try:
                hb = Heartbeat.model_validate({k: v for k, v in raw.items() if k != "seq"})
            except ValidationError:
                log.warning("ignoring unreadable heartbeat of %r in the hub snapshot", actor)
                continue
            current = self._seen.get(hb.actor)
            if current is None or hb.ts >= current.ts:
                self.observe(hb)

    def observe(self, hb: Heartbeat) -> None:
        self._seen[hb.actor] = _Seen(hb.ts, hb.interval_s, hb.status, hb.pid, hb.detail[:512])

    def observe_hub(self, last_seen: datetime | None, silent_after_s: float) -> None:
        """The state writer heartbeats on the updates socket, not as a message; track it the same way."""
        if last_seen is not None:
            self._seen[HUB] = _Seen(last_seen, silent_after_s / self.missed_intervals, "running", None)

    def set_supervisor(self, states: dict[str, str] | None) -> None:
        """program name -> state name, or None when supervisord could not be asked."""
        self._supervisor = states

    def evaluate(self, now: datetime) -> dict[str, ActorLiveness]:
        names = set(self._seen) | set(self._supervisor or {})
        return {name: self._one(name, now) for name in sorted(names)}

    def _one(self, name: str, now: datetime) -> ActorLiveness:
        sup = None if self._supervisor is None else self._supervisor.get(name)
        crash_loop = sup in CRASH_LOOP_STATES
        seen = self._seen.get(name)
        if seen is None:
            reason = "never sent a heartbeat"
            return ActorLiveness(stale=True, supervisor_state=sup, crash_loop=crash_loop,
                                 reason=f"supervisord {sup}; {reason}" if crash_loop else reason)
        threshold = seen.interval_s * self.missed_intervals
        age = (now - seen.ts).total_seconds()
        reasons: list[str] = []
        if age < -self.skew_tolerance_s:
            reasons.append(f"heartbeat stamped {-age:.0f}s in the future (clock skew)")
        age = max(0.0, age)
        if age > threshold:
            reasons.append(f"no heartbeat for {age:.0f}s (limit {threshold:.0f}s)")
        if seen.status == "stopping":
            reasons.append("stopped (last heartbeat said stopping)")
        if sup is not None and sup in NOT_RUNNING_STATES:
            reasons.insert(0, f"supervisord {sup}")
        return ActorLiveness(
            last_heartbeat_ts=seen.ts, age_s=age, threshold_s=threshold, stale=bool(reasons),
            status=seen.status, pid=seen.pid, supervisor_state=sup, crash_loop=crash_loop,
            reason="; ".join(reasons)[:256], detail=seen.detail,
        )
