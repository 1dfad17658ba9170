"""CURVE encryption and a ZAP allow-list for TCP endpoints that cross hosts.

Rules:
- ipc endpoints and loopback TCP need no keys (the run directory is mode 0700).
- Any TCP bind on a non-loopback address must be a CURVE server, or it would accept anyone:
  start-up stops with `SecurityError` unless `bus.curve_server_cert` and
  `bus.curve_allowed_clients_dir` are set.
- A CURVE server authenticates clients through ZAP: only public keys found in
  `curve_allowed_clients_dir` (files NAME.key written by `v7 keys new`) get in. Others fail
  the handshake and never reach the hub's sockets.
- A client uses CURVE for a TCP endpoint whenever `bus.curve_server_public_cert` is set.
"""

from __future__ import annotations

import threading
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from config.settings import Settings

ZAP_DOMAIN = "v7"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


class SecurityError(Exception):
    """An endpoint would be reachable without authentication. Start-up stops; configure CURVE."""


def tcp_host(endpoint: str) -> str | None:
    if not endpoint.startswith("tcp://"):
        return None
    return endpoint[len("tcp://"):].rsplit(":", 1)[0]


def is_loopback(endpoint: str) -> bool:
    host = tcp_host(endpoint)
    return host is None or host in LOOPBACK_HOSTS


def load_secret_cert(path: Path) -> tuple[bytes, bytes]:
    public, secret = zmq.auth.load_certificate(path)
    if secret is None:
        raise SecurityError(f"{path} holds no secret key (use the .key_secret file)")
    return public, secret


def load_public_cert(path: Path) -> bytes:
    public, _secret = zmq.auth.load_certificate(path)
    return public


# One ZAP handler per context (a ZeroMQ rule: ZAP is per context, on inproc://zeromq.zap.01).
_authenticators: dict[int, ThreadAuthenticator] = {}
_auth_lock = threading.Lock()


def _start_authenticator(ctx: zmq.Context, allowed_dir: Path) -> None:
    with _auth_lock:
        if id(ctx) in _authenticators:
            return
        if not allowed_dir.is_dir():
            raise SecurityError(f"bus.curve_allowed_clients_dir {allowed_dir} is not a directory")
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain=ZAP_DOMAIN, location=str(allowed_dir))
        _authenticators[id(ctx)] = auth


def stop_authenticators() -> None:
    with _auth_lock:
        for auth in _authenticators.values():
            auth.stop()
        _authenticators.clear()


def configure_server(sock: zmq.Socket, endpoint: str, settings: Settings) -> None:
    if tcp_host(endpoint) is None:
        return
    cert = settings.bus.curve_server_cert
    if cert is None:
        if is_loopback(endpoint):
            return
        raise SecurityError(
            f"{endpoint} binds a non-loopback TCP address without CURVE; set bus.curve_server_cert and "
            "bus.curve_allowed_clients_dir (generate keys with `v7 keys new NAME`)"
        )
    allowed = settings.bus.curve_allowed_clients_dir
    if allowed is None:
        raise SecurityError(f"{endpoint}: CURVE server needs bus.curve_allowed_clients_dir (the allow-list)")
    _start_authenticator(sock.context, allowed)
    public, secret = load_secret_cert(cert)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_server = True
    sock.zap_domain = ZAP_DOMAIN.encode()


def configure_client(sock: zmq.Socket, endpoint: str, settings: Settings) -> None:
    server_public = settings.bus.curve_server_public_cert
    if tcp_host(endpoint) is None or server_public is None:
        return
    client_cert = settings.bus.curve_client_cert
    if client_cert is None:
        raise SecurityError(f"{endpoint}: CURVE needs bus.curve_client_cert (this host's .key_secret)")
    public, secret = load_secret_cert(client_cert)
    sock.curve_serverkey = load_public_cert(server_public)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
