"""msgpack <-> typed messages. One error type, `BusError`, with a machine-readable code.

An ingest frame is one msgpack map, the envelope (docs/bus_protocol.md is the spec):

    {"src": str, "inc": u64, "sseq": u64, "oldest": u64, "ts": float, "msg": {"type": str, "v": int, ...}}

    pack_message(msg) -> bytes                          the message alone, encoded once per send
    build_envelope(src, inc, sseq, oldest, ts, packed)  what a sender puts in its ingest frame
    encode_envelope(src, inc, sseq, msg)                the same in one call (oldest = sseq)
    decode_header(frame) -> (Header, raw msg)           envelope checks only
    decode_envelope(frame) -> Envelope                  envelope and message validated
    decode_message(obj) -> Message                      a decoded msgpack map as its model
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

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


class Header(NamedTuple):
    """Identity of a message on the bus: (src, inc, sseq) is unique; inc is the sender's incarnation.

    `oldest` is the sender's promise that it will never (re)send any sseq below it.
    """

    src: str
    inc: int
    sseq: int
    oldest: int
    ts: float


class Envelope(NamedTuple):
    """A decoded ingest frame: the header fields and the validated message."""

    src: str
    inc: int
    sseq: int
    oldest: int
    ts: float
    msg: Message


MAX_ID_LEN = 128
U64_MAX = (1 << 64) - 1
ENVELOPE_KEYS = frozenset({"src", "inc", "sseq", "oldest", "ts", "msg"})
_ENVELOPE_SIZE = len(ENVELOPE_KEYS)
# Containers nested deeper than this are refused right after unpacking, before anything
# recursive (validation, repr) touches them: 1000 nested arrays in `msg.v` raised RecursionError
# in the hub. The deepest message is 6 levels below the envelope.
MAX_DEPTH = 32
_CONTAINERS = (dict, list)


class _DuplicateKey(Exception):
    def __init__(self, key: Any) -> None:
        super().__init__(key)
        self.key = key


def _unique_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    # msgpack keeps the last of repeated keys; a map whose meaning depends on that is refused.
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[Any] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _too_deep(obj: Any) -> str | None:
    """The dotted path at which `obj` nests deeper than MAX_DEPTH, or None. Iterative."""
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(obj, 1, ())]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return ".".join(path[:8]) + (".…" if len(path) > 8 else "")
        items = value.items() if type(value) is dict else enumerate(value)
        for key, child in items:
            if type(child) in _CONTAINERS:
                stack.append((child, depth + 1, (*path, str(key)[:32]) if len(path) < 9 else path))
    return None


def _unpack(frame: bytes, max_bytes: int) -> Any:
    if len(frame) > max_bytes:
        raise BusError(ErrorCode.FRAME_TOO_LARGE, f"frame of {len(frame)} bytes exceeds {max_bytes}")
    try:
        obj = msgpack.unpackb(frame, raw=False, strict_map_key=True, object_pairs_hook=_unique_map)
    except _DuplicateKey as dup:
        raise BusError(ErrorCode.MALFORMED, f"map key {short(dup.key)} appears twice", short(dup.key)) from None
    except msgpack.StackError:
        raise BusError(ErrorCode.MALFORMED, f"nested deeper than {MAX_DEPTH} levels") from None
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise BusError(ErrorCode.MALFORMED, f"not a msgpack document: {type(exc).__name__}") from None
    if type(obj) in _CONTAINERS:
        where = _too_deep(obj)
        if where is not None:
            raise BusError(ErrorCode.MALFORMED, f"nested deeper than {MAX_DEPTH} levels", where or None)
    return obj


def short(value: Any, limit: int = 32) -> str:
    """A bounded, non-recursive rendering of a value from the wire, for details and fields."""
    if isinstance(value, str | int | float | bool) or value is None:
        return repr(value)[:limit]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def decode_message(obj: Any) -> Message:
    """Validate a decoded msgpack map as a message of its tagged type and version."""
    if not isinstance(obj, dict):
        raise BusError(ErrorCode.MALFORMED, "message must be a map", "msg")
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
            f"{type_tag} v={short(version)} not supported (supported: {supported})",
            "v",
        )
    try:
        return versions[version].__pydantic_validator__.validate_python(obj)  # model_validate minus a wrapper
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        code = ErrorCode.CONTRACT_BREACH if first["type"] == "contract_breach" else ErrorCode.INVALID_FIELD
        raise BusError(code, f"{type_tag}: {first['msg']}", _field_path(first["loc"]) or None) from None
    except RecursionError:
        raise BusError(ErrorCode.INVALID_FIELD, f"{type_tag}: nested too deeply") from None
    except Exception as exc:
        # A validator that raises something pydantic does not translate (OverflowError, TypeError...)
        # has still refused the input: it is a NACK, never an exception that stops the hub.
        raise BusError(ErrorCode.INVALID_FIELD, f"{type_tag}: validation failed ({type(exc).__name__}: "
                                                f"{str(exc)[:200]})") from None


def _header(obj: Any) -> Header:
    if type(obj) is not dict:
        raise BusError(ErrorCode.MALFORMED, "envelope must be a map")
    try:
        src, inc, sseq, oldest, ts = obj["src"], obj["inc"], obj["sseq"], obj["oldest"], obj["ts"]
    except KeyError as exc:
        key = str(exc.args[0])
        raise BusError(ErrorCode.MALFORMED, f"envelope has no {key!r}", key) from None
    if type(src) is not str or not 0 < len(src) <= MAX_ID_LEN:
        raise BusError(ErrorCode.MALFORMED, f"envelope 'src' must be a string of 1..{MAX_ID_LEN} chars", "src")
    if type(inc) is not int or not 0 <= inc <= U64_MAX:
        raise BusError(ErrorCode.MALFORMED, "envelope 'inc' must be an unsigned 64-bit integer", "inc")
    if type(sseq) is not int or not 0 < sseq <= U64_MAX:
        raise BusError(ErrorCode.MALFORMED, "envelope 'sseq' must be a positive 64-bit integer", "sseq")
    if type(oldest) is not int or not 0 < oldest <= sseq:
        raise BusError(ErrorCode.MALFORMED, "envelope 'oldest' must be an integer in 1..sseq", "oldest")
    if (type(ts) is not float and type(ts) is not int) or not math.isfinite(ts):
        raise BusError(ErrorCode.MALFORMED, "envelope 'ts' must be a finite number", "ts")
    if "msg" not in obj:
        # Checked apart from the header keys: a map with an extra key in its place has the right
        # size, and a missing 'msg' raised KeyError out of decode_header, which stopped the hub.
        raise BusError(ErrorCode.MALFORMED, "envelope has no 'msg'", "msg")
    if len(obj) != _ENVELOPE_SIZE:
        extra = sorted(str(k)[:32] for k in set(obj) - ENVELOPE_KEYS)
        raise BusError(ErrorCode.MALFORMED, f"envelope keys must be exactly {sorted(ENVELOPE_KEYS)}; extra {extra}",
                       extra[0] if extra else None)
    return Header(src, inc, sseq, oldest, float(ts))


def decode_header(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> tuple[Header, Any]:
    """Envelope checks only; returns the header and the still-unvalidated message object."""
    obj = _unpack(frame, max_bytes)
    return _header(obj), obj["msg"] if isinstance(obj, dict) else None


def decode_envelope(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Envelope:
    head, raw = decode_header(frame, max_bytes)
    return Envelope(head.src, head.inc, head.sseq, head.oldest, head.ts, decode_message(raw))


def peek_sseq(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> int | None:
    """Best-effort sseq of a frame whose envelope failed to decode, so its NACK can name it."""
    if len(frame) > max_bytes:
        return None
    try:
        obj = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:  # garbage: there is no sseq to name
        return None
    if isinstance(obj, dict):
        sseq = obj.get("sseq")
        if type(sseq) is int and 0 < sseq <= U64_MAX:
            return sseq
    return None


def pack_message(msg: Message) -> bytes:
    """The message as a msgpack map (with `type` and `v`); encoded once, resent as is."""
    return msgpack.packb(msg.to_wire(), use_bin_type=True)


encode_message = pack_message

_MSG_KEY = msgpack.packb("msg")


def build_envelope(src: str, inc: int, sseq: int, oldest: int, ts: float, packed_msg: bytes) -> bytes:
    # A 5-entry map packed normally, widened to 6 entries with the pre-packed message appended:
    # the message is encoded once per send, not once per (re)transmission.
    head = msgpack.packb({"src": src, "inc": inc, "sseq": sseq, "oldest": oldest, "ts": float(ts)})
    return b"\x86" + head[1:] + _MSG_KEY + packed_msg


def encode_envelope(src: str, inc: int, sseq: int, msg: Message, ts: float | None = None,
                    oldest: int | None = None) -> bytes:
    return build_envelope(src, inc, sseq, sseq if oldest is None else oldest,
                          time.time() if ts is None else ts, pack_message(msg))


def pack(obj: Any) -> bytes:
    """msgpack for protocol frames (replies, snapshots, heartbeats)."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(frame: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Any:
    return _unpack(frame, max_bytes)
