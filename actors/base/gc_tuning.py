"""Garbage-collector settings for long-running actor processes.

Every message allocates dozens of short-lived containers (msgpack maps, pydantic models);
reference counting frees them, but CPython's default gen-0 threshold (700 allocations) runs
the cycle collector thousands of times a second, and each pass over a large heap is slow.
Profiling the state writer under load put a quarter of its CPU in `gc_collect_main`. After
start-up the long-lived objects (modules, models, recovered state) are frozen out of
collection and the young generation is allowed to grow before it is scanned. Cycles are
still collected, just less often.
"""

from __future__ import annotations

import gc

# Young generation scanned after 50k surviving allocations (default 700); older generations
# after 20 and 100 younger passes (defaults 10, 10).
THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Call once start-up (imports, recovery) is done."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
