"""Process-level messages: heartbeats."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bus.messages.base import Identifier, Message, ShortText, UtcTime, utc_now


class Heartbeat(Message):
    """Every actor sends one every `heartbeat_s` seconds; process liveness is built from these."""

    TYPE = "heartbeat"
    type: Literal["heartbeat"] = "heartbeat"
    v: Literal[1] = 1
    ts: UtcTime = Field(default_factory=utc_now)
    actor: Identifier
    pid: int = Field(ge=0)
    started_at: UtcTime
    interval_s: float = Field(gt=0.0)
    loops: int = Field(default=0, ge=0)
    status: Literal["starting", "running", "degraded", "stopping"] = "running"
    detail: ShortText = ""
