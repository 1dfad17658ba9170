"""Hypothesis strategies generated from the message models, and hostile values.

`wire_message(cls)` draws the wire form (a msgpack-able dict, timestamps as ISO strings or
Unix numbers) of a message the model accepts, walking each field's annotation and its
constraints (ge/gt/le, lengths, patterns, literals, nested models), so a new field or message
type is covered without touching this file. Values run to the edges the constraints allow:
0, 1e308, 5e-324, year 1 and 9999 in any UTC offset, the longest allowed strings.

`hostile_values()` are what a broken or hostile client might put anywhere: NaN, inf, huge and
negative numbers, wrong types, binary, deep nesting, long strings.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Union

import annotated_types as at
from hypothesis import strategies as st
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo

from bus.messages import Message

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
# Collections are kept short: breadth comes from many examples, not from huge ones.
_MAX_ITEMS = 4
_MAX_TEXT = 24


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            out.update(_constraints(item.metadata))
        elif isinstance(item, at.Gt):
            out["gt"] = item.gt
        elif isinstance(item, at.Ge):
            out["ge"] = item.ge
        elif isinstance(item, at.Lt):
            out["lt"] = item.lt
        elif isinstance(item, at.Le):
            out["le"] = item.le
        elif isinstance(item, at.MinLen):
            out["min_length"] = item.min_length
        elif isinstance(item, at.MaxLen):
            out["max_length"] = item.max_length
        elif isinstance(item, StringConstraints):
            for key in ("min_length", "max_length", "pattern"):
                if getattr(item, key) is not None:
                    out[key] = getattr(item, key)
        elif getattr(item, "pattern", None) is not None:  # pydantic's general metadata (Field(pattern=))
            out["pattern"] = item.pattern
    return out


def _floats(c: dict[str, Any]) -> st.SearchStrategy[float]:
    low = c.get("ge", c.get("gt"))
    high = c.get("le", c.get("lt"))
    edges = [v for v in (0.0, 1.0, 5e-324, 1e-300, 1e308, -1e308, -0.0)
             if (low is None or v > low or (v == low and "ge" in c))
             and (high is None or v < high or (v == high and "le" in c))]
    body = st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False,
                     exclude_min="gt" in c and low is not None, exclude_max="lt" in c and high is not None)
    return st.one_of(body, st.sampled_from(edges)) if edges else body


def _ints(c: dict[str, Any]) -> st.SearchStrategy[int]:
    low = c.get("ge", c["gt"] + 1 if "gt" in c else I64_MIN)
    high = c.get("le", c["lt"] - 1 if "lt" in c else (1 << 63) - 1)
    return st.one_of(st.integers(low, high), st.sampled_from(sorted({low, high, max(low, min(high, 0))})))


def _text(c: dict[str, Any]) -> st.SearchStrategy[str]:
    if "pattern" in c:
        return st.from_regex(c["pattern"], fullmatch=True)
    low = c.get("min_length", 0)
    high = c.get("max_length")
    short = st.text(min_size=low, max_size=max(low, min(high or _MAX_TEXT, _MAX_TEXT)))
    if high is None:
        return short
    return st.one_of(short, st.text(alphabet="xé\U0001f600", min_size=high, max_size=high))


_OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14)),
                            timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(minutes=-1))])


def _timestamps() -> st.SearchStrategy[Any]:
    """Times as a client may send them: ISO with any offset (incl. the edges of year 1 and 9999),
    naive ISO, Unix seconds and milliseconds."""
    # Every value here is valid (the round-trip properties require that it decodes): a year-1 or
    # year-9999 time whose UTC form leaves 1..9999 is refused, and has its own test in test_codec_properties.
    inner = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
    aware = st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(), inner, _OFFSETS)
    edges = st.sampled_from(["0001-01-01T14:00:00+14:00", "9999-12-31T09:59:59.999999-14:00",
                             "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2025-01-01T00:00:00"])
    numbers = st.one_of(st.floats(-6e10, 2.5e11, allow_nan=False), st.integers(-(10**11), 2 * 10**11))
    return st.one_of(aware, edges, st.datetimes().map(datetime.isoformat), numbers)


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while typing.get_origin(annotation) is Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata = [*extra, *metadata]
    return annotation, metadata


def for_annotation(annotation: Any, metadata: list[Any] | None = None) -> st.SearchStrategy[Any]:
    annotation, inner = _unwrap(annotation)
    c = _constraints([*inner, *(metadata or [])])
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return st.one_of(*(for_annotation(arg, [*inner, *(metadata or [])]) for arg in typing.get_args(annotation)))
    if origin is Literal:
        return st.sampled_from(typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return st.lists(for_annotation(item), min_size=c.get("min_length", 0),
                        max_size=min(c.get("max_length", _MAX_ITEMS), _MAX_ITEMS))
    if origin is dict:
        key, value = typing.get_args(annotation)
        return st.dictionaries(for_annotation(key), for_annotation(value), max_size=_MAX_ITEMS)
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return _ints(c)
    if annotation is float:
        return _floats(c)
    if annotation is str:
        return _text(c)
    if annotation is datetime:
        return _timestamps()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return wire_model(annotation)
    raise TypeError(f"no strategy for {annotation!r}: teach tests/state_plane/strategies.py")


# Model-level checks (contract rules) that random fields rarely satisfy: repair the draw so
# most examples are valid; the unrepaired ones still test the refusal path.
def _repair(cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name == "PositionsLedger" and isinstance(data.get("metadata"), dict):
        data["metadata"] = {**data["metadata"], "entry_count": len(data.get("entries", []))}
    elif name == "PositionRow" and data.get("qty", 0) > 0:
        data["entry_price"] = data["entry_price"] or 1.0
        data["mark_price"] = data["mark_price"] or 1.0
    elif name == "ExitScanCompleted":
        total = data["tp_sl_registered_count"] + data["tp_sl_missing_count"]
        if total < 1 << 63:
            data["open_positions_count"] = total
    elif name == "ExchangePositionsReported":
        unique = {p["symbol"]: p for p in data.get("positions", [])}
        data["positions"] = list(unique.values()) if data["exchange_ok"] else []
        symbols = list(data.get("symbols", []))
        data["symbols"] = symbols + [s for s in unique if s not in symbols and data["exchange_ok"]]
    return data


@st.composite
def _model(draw: st.DrawFn, cls: type[BaseModel]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if name in ("type", "v"):
            continue
        if field.is_required() or draw(st.booleans()):
            data[name] = draw(for_annotation(field.annotation, field.metadata))
    if issubclass(cls, Message):
        data = {"type": cls.TYPE, "v": cls.VERSION, **data}
    return _repair(cls, data)


def wire_model(cls: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    return _model(cls)


def wire_message(cls: type[Message]) -> st.SearchStrategy[dict[str, Any]]:
    return _model(cls)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def hostile_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([float("nan"), float("inf"), float("-inf"), -1, -1.0, 0, -0.0, 5e-324, 1e308, U64_MAX,
                         I64_MIN, True, None, "", "NaN", "1e999", b"\x00\xff", [], {}, "x" * 100_000]),
        st.integers(I64_MIN, U64_MAX),
        st.floats(),
        st.binary(max_size=16),
        st.text(max_size=8),
        st.integers(1, 200).map(_deep),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    )


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a wire value (where a hostile value can be put)."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += paths(item, (*prefix, index))
    return out


def replace_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of `value` with the item at `path` replaced by `new`."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replace_at(value[head], rest, new)}
    copy = list(value)
    copy[head] = replace_at(copy[head], rest, new)
    return copy
