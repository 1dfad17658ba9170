"""Thin HTTP routes over the facade (Starlette). Read-only: GET only, nothing here changes state.

    GET /              the page (static/index.html)
    GET /api/view      the current DashboardView as JSON
    GET /api/events    Server-Sent Events: a `view` event at once, on every change (bursts within
                       0.1 s are one event), and every 5 s
    GET /healthz       200 while the web side runs (the hub's state is in the view, not here)
    GET /static/...    the page's scripts, styles and the vendored chart library

Errors map to responses in one place (`_error`), and the Host header must name this machine,
so a page on another site cannot read the dashboard through DNS rebinding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from prometheus_client import Gauge
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from actors.dashboard.facade import DashboardFacade

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SSE_MIN_GAP_S = 0.1  # a burst of changes (one executor loop publishes several documents) is one event
SSE_REFRESH_S = 5.0  # re-send an unchanged view so ages on the page keep moving
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _ChangeSignal:
    """Wakes every open event stream when the facade changes (set from the actor thread)."""

    def __init__(self, facade: DashboardFacade) -> None:
        self._facade = facade
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def event(self) -> asyncio.Event:
        """The current generation's event (first use binds to the server's loop)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
            self._facade.add_listener(self._from_thread)
        assert self._event is not None
        return self._event

    def _from_thread(self) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._fire)
        except RuntimeError:
            pass  # the server loop has closed (shutting down)

    def _fire(self) -> None:
        fired, self._event = self._event, asyncio.Event()
        if fired is not None:
            fired.set()


def create_app(facade: DashboardFacade, clients: Gauge | None = None, host: str = "127.0.0.1") -> Starlette:
    changes = _ChangeSignal(facade)

    async def index(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=_SECURITY_HEADERS)

    async def api_view(_request: Request) -> Response:
        _version, body = facade.view_json()
        return Response(body, media_type="application/json", headers=_SECURITY_HEADERS)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            if clients is not None:
                clients.inc()
            sent_version, sent_at = -1, 0.0
            try:
                yield "retry: 2000\n\n"
                while not await request.is_disconnected():
                    changed = changes.event()
                    if facade.version != sent_version or time.monotonic() - sent_at >= SSE_REFRESH_S:
                        version, body = facade.view_json()
                        yield f"event: view\nid: {version}\ndata: {body}\n\n"
                        sent_version, sent_at = version, time.monotonic()
                        await asyncio.sleep(SSE_MIN_GAP_S)
                        continue
                    # Sleep until the next change, or the refresh is due (disconnects are seen then too).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), timeout=max(0.05, SSE_REFRESH_S - (
                            time.monotonic() - sent_at)))
            finally:
                if clients is not None:
                    clients.dec()

        headers = {**_SECURITY_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def _error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        log.exception("dashboard: %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal error; see the dashboard log"}, status_code=500)

    allowed = sorted({*LOOPBACK_HOSTS, host})
    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/view", api_view),
            Route("/api/events", events),
            Route("/healthz", healthz),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed)],
        exception_handlers={HTTPException: _error, Exception: _error},
    )
