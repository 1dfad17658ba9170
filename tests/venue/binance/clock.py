"""The venue's clock: wall time plus an offset (the clock-drift fault moves it)."""

from __future__ import annotations

import time
from collections.abc import Callable


class VenueClock:
    """`offset_ms` is a standing offset; `drift_ms` (if set) adds the active clock-drift fault's offset."""

    def __init__(self) -> None:
        self.offset_ms = 0
        self.drift_ms: Callable[[], int] | None = None

    def now_ms(self) -> int:
        drift = self.drift_ms() if self.drift_ms is not None else 0
        return int(time.time() * 1000) + self.offset_ms + drift
