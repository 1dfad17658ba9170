"""Read an old single-process `positions_state.json` into a `ImportLegacyPositions` message (no writes).

Both seed formats are accepted: `{"updated_at": ..., "positions": [...]}` (seed 000) and
`{"updated_ts": ..., "positions": [...]}` (seed 001). A row needs a symbol, a size (`qty`,
`size` or `positionAmt`, signed or with `side`) and `entry_price` > 0; rows of size 0 or side
FLAT are skipped. A row with a non-zero size and no entry price is refused with the row
named: zero prices are exactly how the old files went wrong (seeds 000/001).

The CLI's side (`v7 import-legacy`); the state writer applies the message in `legacy_import.py`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bus.messages import ImportLegacyPositions, LegacyPosition


class LegacyFileError(ValueError):
    """The file cannot be imported as it is; nothing was sent. The message names the row and field."""


_SIDES = {"LONG": "LONG", "BUY": "LONG", "SHORT": "SHORT", "SELL": "SHORT", "FLAT": "FLAT", "": ""}


def _first(row: dict[str, Any], *names: str) -> Any:
    for name in names:
        if row.get(name) is not None:
            return row[name]
    return None


def _timestamp(value: Any, what: str) -> datetime:
    if isinstance(value, bool):
        raise LegacyFileError(f"{what}: not a timestamp: {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e12 else float(value)
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise LegacyFileError(f"{what}: not an ISO 8601 time: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise LegacyFileError(f"{what}: not a timestamp: {value!r}")


def _number(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LegacyFileError(f"{what}: not a number: {value!r}") from None


def _row(index: int, row: Any) -> LegacyPosition | None:
    where = f"positions[{index}]"
    if not isinstance(row, dict):
        raise LegacyFileError(f"{where}: not an object")
    symbol = str(row.get("symbol") or "").upper()
    where = f"positions[{index}] ({symbol or 'no symbol'})"
    size = _number(_first(row, "qty", "size", "positionAmt", "position_amt"), f"{where}.qty")
    side = _SIDES.get(str(row.get("side") or "").upper())
    if side is None:
        raise LegacyFileError(f"{where}.side: expected LONG/SHORT/BUY/SELL/FLAT, got {row.get('side')!r}")
    if size is None or size == 0 or side == "FLAT":
        return None
    if not side:
        side = "LONG" if size > 0 else "SHORT"
    entry = _number(_first(row, "entry_price", "entryPrice", "avg_entry_price"), f"{where}.entry_price")
    if entry is None or entry <= 0:
        raise LegacyFileError(f"{where}.entry_price: a non-zero position needs entry_price > 0 (got {entry!r})")
    mark = _number(_first(row, "mark_price", "markPrice"), f"{where}.mark_price")
    opened = _first(row, "opened_at", "entry_time", "open_time")
    try:
        return LegacyPosition(
            symbol=symbol, side=side, qty=abs(size), entry_price=entry,  # type: ignore[arg-type]
            mark_price=mark if mark and mark > 0 else None,
            opened_at=_timestamp(opened, f"{where}.opened_at") if opened is not None else None,
            tp=_number(_first(row, "tp", "take_profit"), f"{where}.tp") or None,
            sl=_number(_first(row, "sl", "stop_loss"), f"{where}.sl") or None,
        )
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        raise LegacyFileError(f"{where}.{field}: {err['msg']}") from None


def parse_legacy(path: Path, mode: str, account: str) -> ImportLegacyPositions:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LegacyFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LegacyFileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LegacyFileError(f"{path}: top level is not an object")
    if "updated_at" in data:
        fmt, stamp = "updated_at", data["updated_at"]
    elif "updated_ts" in data:
        fmt, stamp = "updated_ts", data["updated_ts"]
    else:
        raise LegacyFileError(f"{path}: neither updated_at nor updated_ts: not a positions_state.json")
    rows = data.get("positions")
    if not isinstance(rows, list):
        raise LegacyFileError(f"{path}: positions: expected a list")
    positions = [p for i, r in enumerate(rows) if (p := _row(i, r)) is not None]
    symbols = [p.symbol for p in positions]
    if len(set(symbols)) != len(symbols):
        raise LegacyFileError(f"{path}: a symbol appears twice among the open positions")
    digest = hashlib.sha256(f"{mode}\0{account}\0".encode() + raw).hexdigest()
    try:
        return ImportLegacyPositions(
            digest=digest, source_path=str(path.resolve())[:2048], source_format=fmt,  # type: ignore[arg-type]
            source_updated=_timestamp(stamp, fmt), mode=mode, account=account,  # type: ignore[arg-type]
            positions=positions)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise LegacyFileError(f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
