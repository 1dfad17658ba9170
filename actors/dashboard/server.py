"""uvicorn on its own thread, bound to a socket we open first (so a busy port fails loudly at start)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading

import uvicorn
from starlette.applications import Starlette

from config.settings import ConfigError

log = logging.getLogger(__name__)


def loopback_only(host: str) -> None:
    """Servers bind to loopback only; a remote dashboard reads the sync actor's mirror instead."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ConfigError(f"dashboard.host: {host!r} is not a loopback address (use 127.0.0.1, ::1 or localhost)")


class WebServer:
    def __init__(self, app: Starlette, host: str, port: int) -> None:
        loopback_only(host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"dashboard.port: cannot listen on {host}:{port}: {exc.strerror}") from None
        self.sock.listen(64)
        self.host, self.port = host, self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                # open event streams never end by themselves; do not wait long for them
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="dashboard-web", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except Exception:
            log.exception("dashboard web server stopped with an error")

    def start(self) -> None:
        self._thread.start()
        log.info("dashboard serving at %s", self.url)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self.sock.close()
