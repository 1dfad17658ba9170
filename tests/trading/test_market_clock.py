"""The paper market's clock wakes on the simulation grid, so every step is computed when it is due."""

from __future__ import annotations

import pytest

from actors.exchange.market_clock import market_clock_wait
from config.settings import PaperSettings
from exchange.paper.market import MarketSimulator


def test_it_wakes_exactly_when_the_next_step_is_due() -> None:
    assert market_clock_wait(100.25, now=100.05, tick_s=0.25, loop_s=0.25) == pytest.approx(0.20)
    # Late (a slow step): no negative wait, step at once.
    assert market_clock_wait(100.25, now=100.40, tick_s=0.25, loop_s=0.25) == 0.0


def test_a_slower_loop_wakes_on_a_later_grid_point() -> None:
    # loop_s = 4 ticks: wake when the 4th step from now is due, never between grid points.
    assert market_clock_wait(100.25, now=100.0, tick_s=0.25, loop_s=1.0) == pytest.approx(1.0)
    # Not a whole number of ticks: the nearest whole number of steps.
    assert market_clock_wait(100.25, now=100.0, tick_s=0.25, loop_s=0.6) == pytest.approx(0.5)
    # Faster than the grid: one step at a time, on the grid.
    assert market_clock_wait(100.25, now=100.0, tick_s=0.25, loop_s=0.05) == pytest.approx(0.25)


def test_without_a_grid_it_waits_loop_s() -> None:
    assert market_clock_wait(None, now=100.0, tick_s=0.25, loop_s=0.7) == 0.7


def test_waking_at_the_announced_time_runs_one_step_stamped_then() -> None:
    paper = PaperSettings(tick_s=0.25)
    market = MarketSimulator(paper, ["BTCUSDT"], None, now=1_000.0)
    due = market.next_step_at()
    assert due == pytest.approx(1_000.25)
    assert list(market.advance(due - 0.001)) == []  # nothing before its time
    assert list(market.advance(due)) == [pytest.approx(due)]
    assert market.next_step_at() == pytest.approx(1_000.50)
