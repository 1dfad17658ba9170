"""Exit rules on a position's levels: pure, shared by the scanner and the tests.

A LONG exits at take profit when mark >= tp and at stop loss when mark <= sl; a SHORT the
other way round. Past `ttl_ts` it exits on time. When several hold at once the stop wins
(it is the one that limits the loss), then TP, then TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.vocabulary import Direction, ExitReason


@dataclass(frozen=True, slots=True)
class ExitLevels:
    symbol: str
    side: Direction
    position_id: str
    tp: float | None
    sl: float | None
    ttl_ts: datetime | None
    source: str = "intent"  # intent | ledger

    @property
    def protected(self) -> bool:
        """Both a take profit and a stop loss are set."""
        return self.tp is not None and self.sl is not None

    def check(self, mark: float, now: datetime) -> tuple[ExitReason, float | None] | None:
        """(reason, level crossed) if the position must exit now, else None."""
        long = self.side == "LONG"
        if self.sl is not None and (mark <= self.sl if long else mark >= self.sl):
            return "SL", self.sl
        if self.tp is not None and (mark >= self.tp if long else mark <= self.tp):
            return "TP", self.tp
        if self.ttl_ts is not None and now >= self.ttl_ts:
            return "TTL", None
        return None
