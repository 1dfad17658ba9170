"""The exchange adapter interface over ZeroMQ: one request frame, one reply frame, msgpack.

    request  {op, req, args}                    op: an `ExchangeAdapter` method name, or
                                                `stream_snapshot` (the gateway's state at its
                                                stream sequences, exchange/stream_server.py)
    reply    {req, ok: true,  result}
             {req, ok: false, error: {kind, code, detail}}     kind: rejected | not_found |
                                                                bad_request | error

`dispatch()` serves any `ExchangeAdapter` (the paper exchange process uses it); the client in
`exchange.client` is the other end. Arguments and results are validated by the same models
on both sides, so a malformed request is answered `bad_request` and never reaches the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bus import codec
from bus.codec import BusError
from bus.messages.base import UtcTime
from exchange.adapter import (
    Balance,
    Bar,
    BookTop,
    ClientOrderId,
    ExchangeAdapter,
    ExchangeFill,
    ExchangePosition,
    Instrument,
    Order,
    OrderRequest,
    Symbol,
)
from exchange.errors import BadRequest, ExchangeError
from exchange.stream_server import StreamServer
from exchange.streams import ExchangeSnapshot, StreamSnapshot

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 << 10
MAX_REPLY_BYTES = 64 << 20


class _Args(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class NoArgs(_Args):
    pass


class TopsArgs(_Args):
    symbols: list[Symbol] = Field(max_length=500)


class BarsArgs(_Args):
    symbol: Symbol
    limit: int = Field(ge=1, le=5000)


class PlaceArgs(_Args):
    request: OrderRequest


class OrderRefArgs(_Args):
    symbol: Symbol
    client_order_id: ClientOrderId


class OrdersArgs(_Args):
    symbol: Symbol
    client_order_id_prefix: str = Field(default="", max_length=36)
    open_only: bool = False


class FillsArgs(_Args):
    since: UtcTime | None = None
    symbol: Symbol | None = None
    limit: int = Field(default=1000, ge=1, le=10_000)


@dataclass(frozen=True)
class Op:
    args: type[_Args]
    result: TypeAdapter[Any]
    call: Callable[[ExchangeAdapter, Any], Any] | None  # None: answered by the gateway's stream server


OPS: dict[str, Op] = {
    "ping": Op(NoArgs, TypeAdapter(str), lambda ex, a: "pong"),
    "instruments": Op(NoArgs, TypeAdapter(dict[str, Instrument]), lambda ex, a: ex.instruments()),
    "fetch_tops": Op(TopsArgs, TypeAdapter(dict[str, BookTop]), lambda ex, a: ex.fetch_tops(a.symbols)),
    "fetch_bars": Op(BarsArgs, TypeAdapter(list[Bar]), lambda ex, a: ex.fetch_bars(a.symbol, a.limit)),
    "fetch_balance": Op(NoArgs, TypeAdapter(Balance), lambda ex, a: ex.fetch_balance()),
    "fetch_positions": Op(NoArgs, TypeAdapter(list[ExchangePosition]), lambda ex, a: ex.fetch_positions()),
    "place_order": Op(PlaceArgs, TypeAdapter(Order), lambda ex, a: ex.place_order(a.request)),
    "cancel_order": Op(OrderRefArgs, TypeAdapter(Order), lambda ex, a: ex.cancel_order(a.symbol, a.client_order_id)),
    "fetch_order": Op(OrderRefArgs, TypeAdapter(Order), lambda ex, a: ex.fetch_order(a.symbol, a.client_order_id)),
    "fetch_orders": Op(
        OrdersArgs, TypeAdapter(list[Order]),
        lambda ex, a: ex.fetch_orders(a.symbol, a.client_order_id_prefix, a.open_only),
    ),
    "fetch_fills": Op(
        FillsArgs, TypeAdapter(list[ExchangeFill]), lambda ex, a: ex.fetch_fills(a.since, a.symbol, a.limit)
    ),
    "snapshot": Op(NoArgs, TypeAdapter(ExchangeSnapshot), lambda ex, a: ex.snapshot()),
    "stream_snapshot": Op(NoArgs, TypeAdapter(StreamSnapshot), None),
}


def _error(req: Any, exc: ExchangeError) -> dict[str, Any]:
    return {"req": req, "ok": False, "error": {"kind": exc.kind, "code": exc.code, "detail": exc.detail[:1000]}}


def dispatch(adapter: ExchangeAdapter, frame: bytes, streams: StreamServer | None = None) -> tuple[bytes, str, str]:
    """Answer one request frame. Returns (reply frame, op, outcome) for metrics; never raises
    for bad input (a request that cannot be answered gets a `bad_request` reply)."""
    req: Any = None
    op_name = "unknown"
    try:
        try:
            request = codec.unpack(frame, max_bytes=MAX_REQUEST_BYTES)
        except BusError as err:
            raise BadRequest("malformed", err.detail) from None
        if not isinstance(request, dict):
            raise BadRequest("malformed", "request must be a map")
        req = request.get("req")
        if not isinstance(req, int | str | None):
            req = None
        name = request.get("op")
        op = OPS.get(name) if isinstance(name, str) else None
        if op is None:
            raise BadRequest("unknown_op", f"unknown op {str(name)[:40]!r}")
        op_name = str(name)
        try:
            args = op.args.model_validate(request.get("args") or {})
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BadRequest("invalid_args", f"{op_name}: {where}: {first['msg']}") from None
        if op.call is not None:
            result = op.call(adapter, args)
        elif streams is not None:
            result = streams.snapshot(adapter)
        else:
            raise BadRequest("unknown_op", f"{op_name}: this endpoint publishes no streams")
        reply = {"req": req, "ok": True, "result": op.result.dump_python(result, mode="json")}
        return codec.pack(reply), op_name, "ok"
    except ExchangeError as exc:
        return codec.pack(_error(req, exc)), op_name, exc.kind
