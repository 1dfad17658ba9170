"""Process-level and operator messages: heartbeats, NAV peak reset."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from bus.messages.base import Count, Identifier, Message, Pid, PositiveMoney, ShortText, UtcTime, utc_now

MAX_HEARTBEAT_INTERVAL_S = 3600.0


class Heartbeat(Message):
    """Every actor sends one every `heartbeat_s` seconds; process liveness is built from these."""

    TYPE = "heartbeat"
    type: Literal["heartbeat"] = "heartbeat"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    actor: Identifier
    pid: Pid
    started_at: UtcTime
    # Diagnostics calls an actor stale after a few intervals: an hour bounds that threshold.
    interval_s: float = Field(gt=0.0, le=MAX_HEARTBEAT_INTERVAL_S)
    loops: Count = 0
    status: Literal["starting", "running", "degraded", "stopping"] = "running"
    detail: ShortText = ""


class NavPeakReset(Message):
    """Operator command: move peak NAV, audited (`v7 nav reset-peak`).

    The anomaly guard never lets the peak follow a NAV far above it, which is right for a
    ghost reading and wrong for a real deposit: after one, every reading stays anomalous and
    entries stay vetoed until an operator resets the peak. Sync applies the newest reset at
    its next NAV sample and records it in nav_state (`peak_reset`).
    """

    TYPE = "nav_peak_reset"
    DURABLE = True
    type: Literal["nav_peak_reset"] = "nav_peak_reset"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    peak_nav: PositiveMoney | None = Field(default=None, description="New peak; None means the next NAV reading.")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    operator: Identifier = "operator"
