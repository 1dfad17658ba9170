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
- A client's ZAP User-Id is its key file's name (`alice` for alice.key), and the hub lets a
  key speak only as the producers its file names: its own name, or the list in the file's
  `producers` metadata (`v7 keys new host-b --producers executor,router`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import zmq
import zmq.auth
import zmq.utils.z85
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


def _metadata(path: Path) -> dict[str, str]:
    """The `metadata` section of a ZeroMQ certificate file (ZPL: `    name = "value"` lines)."""
    out: dict[str, str] = {}
    section = ""
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith((" ", "\t")):
            section = line.strip()
            continue
        if section == "metadata" and "=" in line:
            name, _sep, value = line.strip().partition("=")
            out[name.strip()] = value.strip().strip('"')
    return out


def allowed_keys(allowed_dir: Path) -> dict[bytes, tuple[str, frozenset[str]]]:
    """z85 public key -> (name, producers it may speak as), from the allow-list directory."""
    out: dict[bytes, tuple[str, frozenset[str]]] = {}
    for path in sorted(allowed_dir.glob("*.key")):
        public = load_public_cert(path)
        producers = _metadata(path).get("producers", "")
        names = frozenset(p for p in producers.replace(",", " ").split() if p) or frozenset({path.stem})
        out[public] = (path.stem, names)
    return out


class _NamedAuthenticator(ThreadAuthenticator):
    """Reports a client's key file name as its ZAP User-Id, so the hub sees who is speaking."""

    def __init__(self, ctx: zmq.Context, names: dict[bytes, str]) -> None:
        super().__init__(ctx)
        self._names = names

    def curve_user_id(self, client_public_key: bytes) -> str:
        z85 = zmq.utils.z85.encode(client_public_key)
        return self._names.get(z85, z85.decode("ascii"))


# One ZAP handler per context (a ZeroMQ rule: ZAP is per context, on inproc://zeromq.zap.01).
_authenticators: dict[int, ThreadAuthenticator] = {}
_auth_lock = threading.Lock()


def _start_authenticator(ctx: zmq.Context, allowed_dir: Path) -> None:
    with _auth_lock:
        if id(ctx) in _authenticators:
            return
        if not allowed_dir.is_dir():
            raise SecurityError(f"bus.curve_allowed_clients_dir {allowed_dir} is not a directory")
        auth = _NamedAuthenticator(ctx, {key: name for key, (name, _p) in allowed_keys(allowed_dir).items()})
        auth.start()
        auth.configure_curve(domain=ZAP_DOMAIN, location=str(allowed_dir))
        _authenticators[id(ctx)] = auth


def is_curve_server(endpoint: str, settings: Settings) -> bool:
    """True when `endpoint` is bound as a CURVE server (its clients have a ZAP User-Id)."""
    return tcp_host(endpoint) is not None and settings.bus.curve_server_cert is not None


def curve_key_producers(settings: Settings) -> dict[str, frozenset[str]]:
    """Key name -> the producers that key may speak as (the hub's side of `allowed_keys`)."""
    allowed = settings.bus.curve_allowed_clients_dir
    if allowed is None or not allowed.is_dir():
        return {}
    return dict(allowed_keys(allowed).values())


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
