"""The hub's answers on ingest, one typed model per kind (docs/bus_protocol.md section 3.2).

On the wire a reply frame is a msgpack array of reply items, each an array:

    ["A", sseq, seq]                               Ack: committed as hub seq `seq`
    ["D", sseq, seq]                               Duplicate: committed before as `seq` (0: unknown)
    ["O", sseq, expected]                          OutOfOrder: not applied; resend from `expected`
    ["N", sseq | nil, code, field | nil, detail]   Nack: refused, never applied

The hub builds these and `encode` packs them; the sender reads them with `decode`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from bus import codec
from bus.codec import BusError
from bus.protocol import ACK, DUPLICATE, NACK, OUT_OF_ORDER, ErrorCode


class Ack(NamedTuple):
    sseq: int
    seq: int

    def wire(self) -> list[Any]:
        return [ACK, self.sseq, self.seq]


class Duplicate(NamedTuple):
    sseq: int
    seq: int

    def wire(self) -> list[Any]:
        return [DUPLICATE, self.sseq, self.seq]


class OutOfOrder(NamedTuple):
    sseq: int
    expected: int

    def wire(self) -> list[Any]:
        return [OUT_OF_ORDER, self.sseq, self.expected]


class Nack(NamedTuple):
    sseq: int | None
    code: ErrorCode
    field: str | None
    detail: str

    def wire(self) -> list[Any]:
        return [NACK, self.sseq, self.code.value, self.field, self.detail]

    @classmethod
    def of(cls, sseq: int | None, err: BusError, limit: int) -> Nack:
        return cls(sseq, err.code, err.field, err.detail[:limit])

    def error(self) -> BusError:
        return BusError(self.code, self.detail, self.field)


Reply = Ack | Duplicate | OutOfOrder | Nack


def encode(items: Iterable[Reply]) -> bytes:
    return codec.pack([item.wire() for item in items])


def _int(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"expected an int, got {type(value).__name__}")
    return value


def decode_item(item: Any) -> Reply:
    """One reply item as its model; ValueError if it is not one the protocol defines."""
    if not isinstance(item, list) or len(item) < 3:
        raise ValueError(f"malformed reply item {item!r:.80}")
    kind = item[0]
    if kind == ACK:
        return Ack(_int(item[1]), _int(item[2]))
    if kind == DUPLICATE:
        return Duplicate(_int(item[1]), _int(item[2]))
    if kind == OUT_OF_ORDER:
        return OutOfOrder(_int(item[1]), _int(item[2]))
    if kind == NACK:
        sseq = None if item[1] is None else _int(item[1])
        where = item[3] if len(item) > 3 and isinstance(item[3], str) else None
        detail = str(item[4]) if len(item) > 4 else ""
        try:
            code = ErrorCode(str(item[2]))
        except ValueError:  # a newer hub's code: still a refusal
            return Nack(sseq, ErrorCode.MALFORMED, where, f"{item[2]}: {detail}")
        return Nack(sseq, code, where, detail)
    raise ValueError(f"unknown reply kind {kind!r:.16}")


def decode(frame: bytes) -> list[Reply | ValueError]:
    """Every item of a reply frame; an unreadable item comes back as its ValueError."""
    try:
        items = codec.unpack(frame)
    except BusError as err:
        return [ValueError(f"unreadable reply frame: {err.detail}")]
    if not isinstance(items, list):
        return [ValueError("reply frame is not an array")]
    out: list[Reply | ValueError] = []
    for item in items:
        try:
            out.append(decode_item(item))
        except ValueError as exc:
            out.append(exc)
    return out
