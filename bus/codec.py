"""msgpack <-> typed messages. One error type, `BusError`, with a machine-readable code.

    encode_envelope(src, inc, sseq, msg) -> bytes      what a sender puts in its ingest frame
    decode_envelope(frame) -> Envelope                 validates envelope and message
    encode_message(msg) / decode_message(obj)          the message alone (msgpack map / dict)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import msgpack
from pydantic import ValidationError

from bus.messages import REGISTRY, Message
from bus.protocol import DEFAULT_MAX_FRAME_BYTES, ErrorCode


class BusError(Exception):
    """A frame or message the bus refuses. The sender gets a NACK with `code`; nothing is applied."""

    def __init__(self, code: ErrorCode, detail: str, field: str | None = None) -> None:
        super().__init__(f"{code.value}: {detail}" + (f" (field {field})" if field else ""))
        self.code = code
        self.detail = detail
        self.field = field


@dataclass(frozen=True, slots=True)
class Envelope:
    """Identity of a message on the bus: (src, inc, sseq) is unique; inc is the sender's incarnation."""

    src: str
    inc: int
    sseq: int
    ts: float
    msg: Message


_MAX_ID_LEN = 128
_U64_MAX = (1 << 64) - 1


def _unpack(frame: bytes, max_bytes: int) -> Any:
    if len(frame) > max_bytes:
        raise BusError(ErrorCode.FRAME_TOO_LARGE, f"frame of {len(frame)} bytes exceeds {max_bytes}")
    try:
        return msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise BusError(ErrorCode.MALFORMED, f"not a msgpack document: {type(exc).__name__}") from None


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def decode_message(obj: Any) -> Message:
    """Validate a decoded msgpack map as a message of its tagged type and version."""
    if not isinstance(obj, dict):
        raise BusError(ErrorCode.MALFORMED, "message must be a map")
    type_tag = obj.get("type")
    if not isinstance(type_tag, str):
        raise BusError(ErrorCode.MALFORMED, "message has no string 'type'", "type")
    versions = REGISTRY.get(type_tag)
    if versions is None:
        raise BusError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {type_tag[:64]!r}", "type")
    version = obj.get("v")
    if type(version) is not int or version not in versions:
        supported = ",".join(str(v) for v in sorted(versions))
        raise BusError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"{type_tag} v={str(version)[:32]} not supported (supported: {supported})",
            "v",
        )
    try:
        return versions[version].model_validate(obj)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        code = ErrorCode.CONTRACT_BREACH if first["type"] == "contract_breach" else ErrorCode.INVALID_FIELD
        raise BusError(code, f"{type_tag}: {first['msg']}", _field_path(first["loc"]) or None) from None


def decode_envelope(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Envelope:
    obj = _unpack(frame, max_bytes)
    if not isinstance(obj, dict):
        raise BusError(ErrorCode.MALFORMED, "envelope must be a map")
    src, inc, sseq, ts = obj.get("src"), obj.get("inc"), obj.get("sseq"), obj.get("ts")
    if not isinstance(src, str) or not 0 < len(src) <= _MAX_ID_LEN:
        raise BusError(ErrorCode.MALFORMED, "envelope 'src' must be a non-empty string", "src")
    if type(inc) is not int or not 0 <= inc <= _U64_MAX:
        raise BusError(ErrorCode.MALFORMED, "envelope 'inc' must be an unsigned integer", "inc")
    if type(sseq) is not int or not 0 < sseq <= _U64_MAX:
        raise BusError(ErrorCode.MALFORMED, "envelope 'sseq' must be a positive integer", "sseq")
    if type(ts) not in (int, float) or not math.isfinite(ts):
        raise BusError(ErrorCode.MALFORMED, "envelope 'ts' must be a finite number", "ts")
    if set(obj) - {"src", "inc", "sseq", "ts", "msg"}:
        raise BusError(ErrorCode.MALFORMED, "envelope has unknown keys")
    return Envelope(src=src, inc=inc, sseq=sseq, ts=float(ts), msg=decode_message(obj.get("msg")))


def peek_sseq(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> int | None:
    """Best-effort sseq of a frame that failed to decode, so its NACK can name it."""
    try:
        obj = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:
        return None
    if isinstance(obj, dict):
        sseq = obj.get("sseq")
        if type(sseq) is int and 0 < sseq <= _U64_MAX:
            return sseq
    return None


def encode_message(msg: Message) -> bytes:
    return msgpack.packb(msg.to_wire(), use_bin_type=True)


def encode_envelope(src: str, inc: int, sseq: int, msg: Message, ts: float | None = None) -> bytes:
    return msgpack.packb(
        {"src": src, "inc": inc, "sseq": sseq, "ts": time.time() if ts is None else ts, "msg": msg.to_wire()},
        use_bin_type=True,
    )


def pack(obj: Any) -> bytes:
    """msgpack for protocol frames (replies, snapshots, heartbeats)."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Any:
    return _unpack(frame, max_bytes)
