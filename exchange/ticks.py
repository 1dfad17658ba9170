"""Rounding prices to the tick and quantities to the lot, without float dust."""

from __future__ import annotations

import math

_EPS = 1e-9


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step)) + 2)


def floor_to(value: float, step: float) -> float:
    return round(math.floor(value / step + _EPS) * step, _decimals(step))


def ceil_to(value: float, step: float) -> float:
    return round(math.ceil(value / step - _EPS) * step, _decimals(step))


def round_to(value: float, step: float) -> float:
    return round(round(value / step) * step, _decimals(step))
