"""Decimal parsing and Binance's number formatting (numbers travel as strings)."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import illegal_chars, mandatory

_DECIMAL_RE = re.compile(r"^-?([0-9]{1,20})(\.[0-9]{1,20})?$")
_INT_RE = re.compile(r"^-?[0-9]{1,19}$")

ZERO = Decimal(0)


def parse_decimal(name: str, raw: str | None, *, required: bool = True) -> Decimal | None:
    """A request DECIMAL parameter (-1102 if missing and required, -1100 if not a number)."""
    if raw is None or raw == "":
        if required:
            raise mandatory(name)
        return None
    if not _DECIMAL_RE.match(raw):
        raise illegal_chars(name)
    try:
        return Decimal(raw)
    except InvalidOperation as exc:
        raise illegal_chars(name) from exc


def parse_int(name: str, raw: str | None, *, required: bool = False) -> int | None:
    """A request LONG/INT parameter (-1102 if missing and required or malformed)."""
    if raw is None or raw == "":
        if required:
            raise mandatory(name)
        return None
    if not _INT_RE.match(raw):
        raise mandatory(name)
    return int(raw)


def decimals_of(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -int(exponent))


def fmt(value: Decimal, places: int) -> str:
    """`value` with exactly `places` decimals (half-up), as Binance prints prices and quantities."""
    quantum = Decimal(1).scaleb(-places)
    result = value.quantize(quantum, rounding=ROUND_HALF_UP)
    if result == 0:
        result = abs(result)
    return f"{result:f}"


def plain(value: Decimal) -> str:
    """`value` without trailing zeros (filters and configuration values)."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_HALF_UP) * step


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0
