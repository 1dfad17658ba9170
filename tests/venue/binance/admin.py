"""Admin HTTP endpoints under /_fake/ (never under /fapi): inspect state, arm faults, move prices."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from .config import KeySpec
from .faults import FaultKind
from .venue import VENUE, Venue


def _venue(request: web.Request) -> Venue:
    return request.app[VENUE]


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


def _ok(body: Any) -> web.Response:
    return web.json_response(body)


async def state(request: web.Request) -> web.Response:
    return _ok(_venue(request).snapshot())


async def requests_log(request: web.Request) -> web.Response:
    limit = int(request.query.get("limit", "1000"))
    return _ok(list(_venue(request).request_log)[-limit:])


async def list_faults(request: web.Request) -> web.Response:
    return _ok(_venue(request).faults.describe())


async def arm_fault(request: web.Request) -> web.Response:
    body = await _body(request)
    kind = body.pop("kind", None)
    count = body.pop("count", None)
    seconds = body.pop("seconds", None)
    try:
        fault = _venue(request).faults.arm(FaultKind(kind), count=count, seconds=seconds, **body)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    _venue(request).notify()
    return _ok(fault.public())


async def clear_faults(request: web.Request) -> web.Response:
    venue = _venue(request)
    fault_id = request.match_info.get("fault_id")
    kind = request.query.get("kind")
    removed = venue.faults.clear(int(fault_id) if fault_id else None, FaultKind(kind) if kind else None)
    venue.notify()
    return _ok({"removed": removed})


async def expire_listen_keys(request: web.Request) -> web.Response:
    venue = _venue(request)
    body = await _body(request)
    account = None
    if body.get("api_key"):
        key = venue.keys.get(body["api_key"])
        if key is None:
            raise web.HTTPNotFound(text="unknown api_key")
        account = key.account_id
    return _ok({"expired": venue.listen_keys.expire_all(account, notify=body.get("notify", True))})


async def drop_ws(request: web.Request) -> web.Response:
    body = await _body(request)
    scope = body.get("scope", "all")
    if scope not in ("all", "user", "market"):
        raise web.HTTPBadRequest(text="scope must be all, user or market")
    return _ok({"dropped": await _venue(request).hub.drop(scope)})


async def set_price(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        bid = Decimal(str(body["bid"]))
        top = _venue(request).set_price(str(body["symbol"]), bid, pause=bool(body.get("pause", True)))
    except (KeyError, InvalidOperation) as exc:
        raise web.HTTPBadRequest(text=f"need symbol and bid: {exc}") from exc
    return _ok(top)


async def resume_walk(request: web.Request) -> web.Response:
    body = await _body(request)
    _venue(request).resume_walk(body.get("symbol"))
    return _ok({})


async def tick(request: web.Request) -> web.Response:
    _venue(request).tick()
    return _ok({})


async def add_key(request: web.Request) -> web.Response:
    try:
        key = KeySpec.model_validate(await _body(request))
    except ValidationError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    _venue(request).keys.add(key)
    return _ok({"api_key": key.api_key, "account": key.account_id})


async def key_permissions(request: web.Request) -> web.Response:
    venue = _venue(request)
    body = await _body(request)
    allowed = {k: bool(v) for k, v in body.items() if k in ("enable_futures", "enable_reading")}
    try:
        key = venue.keys.set_permissions(request.match_info["api_key"], **allowed)
    except KeyError as exc:
        raise web.HTTPNotFound(text="unknown api_key") from exc
    return _ok({"api_key": key.api_key, "enable_futures": key.enable_futures, "enable_reading": key.enable_reading})


def add_admin_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_fake/state", state)
    r.add_get("/_fake/requests", requests_log)
    r.add_get("/_fake/faults", list_faults)
    r.add_post("/_fake/faults", arm_fault)
    r.add_delete("/_fake/faults", clear_faults)
    r.add_delete("/_fake/faults/{fault_id}", clear_faults)
    r.add_post("/_fake/listen_keys/expire", expire_listen_keys)
    r.add_post("/_fake/ws/drop", drop_ws)
    r.add_post("/_fake/price", set_price)
    r.add_post("/_fake/walk/resume", resume_walk)
    r.add_post("/_fake/tick", tick)
    r.add_post("/_fake/keys", add_key)
    r.add_post("/_fake/keys/{api_key}/permissions", key_permissions)
