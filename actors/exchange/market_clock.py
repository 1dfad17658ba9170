"""When the gateway's paper-market clock wakes next.

The simulator's steps lie on a fixed grid of `tick_s` from its last step. Waking on that grid
(not on a timer of its own phase) computes each step when its time comes, so a tick's stamp is
when it was published, not up to one tick earlier. A venue-driven market (DRY_RUN) has no grid
and a failed step has no reliable one: both wait `loop_s`.
"""

from __future__ import annotations


def market_clock_wait(next_step_at: float | None, now: float, tick_s: float, loop_s: float) -> float:
    """Seconds to wait before the next market step (never negative).

    `loop_s` slower than `tick_s` throttles the clock: it wakes on the grid point that makes a
    whole number of steps due at once, the last of them fresh.
    """
    if next_step_at is None:
        return loop_s
    steps = max(1, round(loop_s / tick_s))
    return max(0.0, next_step_at + (steps - 1) * tick_s - now)
