"""CURVE on TCP endpoints. ipc and loopback TCP need no keys; any other TCP bind must be CURVE.

Keys are ZeroMQ's z85 key files written by `v7 keys`. The server side authenticates clients
with a ZAP allow-list: the public keys in `bus.curve_allowed_clients_dir`.
"""

from __future__ import annotations

from pathlib import Path

import zmq

from config.settings import Settings


class SecurityError(Exception):
    """A TCP endpoint would accept anyone. Start-up stops; configure CURVE keys."""


def _is_loopback_tcp(endpoint: str) -> bool:
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0]
    return host in {"127.0.0.1", "localhost", "[::1]", "::1"}


def needs_curve(endpoint: str, settings: Settings) -> bool:
    return endpoint.startswith("tcp://") and (
        settings.bus.curve_server_secret is not None or not _is_loopback_tcp(endpoint)
    )


def read_key(path: str) -> bytes:
    text = Path(path).read_text().strip()
    return text.encode()


def configure_server(sock: zmq.Socket, endpoint: str, settings: Settings) -> None:
    if not needs_curve(endpoint, settings):
        return
    if not (settings.bus.curve_server_secret and settings.bus.curve_server_public):
        raise SecurityError(
            f"{endpoint} is a non-loopback TCP endpoint; set bus.curve_server_secret and "
            "bus.curve_server_public (generate them with `v7 keys`)"
        )
    sock.curve_secretkey = read_key(settings.bus.curve_server_secret)
    sock.curve_publickey = read_key(settings.bus.curve_server_public)
    sock.curve_server = True


def configure_client(sock: zmq.Socket, endpoint: str, settings: Settings) -> None:
    if not endpoint.startswith("tcp://") or not settings.bus.curve_server_public:
        return
    if not (settings.bus.curve_client_secret and settings.bus.curve_client_public):
        raise SecurityError(f"{endpoint}: set bus.curve_client_secret/public to connect with CURVE")
    sock.curve_serverkey = read_key(settings.bus.curve_server_public)
    sock.curve_secretkey = read_key(settings.bus.curve_client_secret)
    sock.curve_publickey = read_key(settings.bus.curve_client_public)
