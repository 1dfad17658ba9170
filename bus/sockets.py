"""Socket construction with the options that matter (ZeroMQ guide, libzmq docs).

- finite LINGER everywhere, so a close never hangs on a dead peer;
- ipc endpoints live in a run directory created with mode 0700;
- ROUTER sockets that answer peers set ROUTER_MANDATORY, so an unroutable reply raises
  instead of vanishing, and MAXMSGSIZE, so a huge frame drops the connection rather than
  the process's memory;
- TCP endpoints use CURVE when keys are configured (bus/security.py), and ZMTP heartbeats
  and a connect timeout, so a link that drops packets silently is noticed and re-joined
  within seconds of its return rather than after the kernel's retransmission backoff.
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq

from config.settings import Settings


def ensure_ipc_dir(endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        directory = Path(endpoint[len("ipc://"):]).parent
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)


def _apply_common(sock: zmq.Socket, endpoint: str, settings: Settings, *, client: bool) -> None:
    sock.setsockopt(zmq.LINGER, settings.bus.linger_ms)
    bus = settings.bus
    if endpoint.startswith("tcp://"):
        if bus.tcp_heartbeat_s > 0:
            sock.setsockopt(zmq.HEARTBEAT_IVL, int(bus.tcp_heartbeat_s * 1000))
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(bus.tcp_heartbeat_timeout_s * 1000))
        if client:
            sock.setsockopt(zmq.CONNECT_TIMEOUT, int(bus.tcp_connect_timeout_s * 1000))


def bind(ctx: zmq.Context, kind: int, endpoint: str, settings: Settings) -> zmq.Socket:
    from bus.security import configure_server

    sock = ctx.socket(kind)
    _apply_common(sock, endpoint, settings, client=False)
    if kind == zmq.ROUTER:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, settings.bus.max_frame_bytes * 4)
    if kind in (zmq.PUB, zmq.XPUB):
        sock.setsockopt(zmq.SNDHWM, settings.bus.sndhwm)
    if kind == zmq.XPUB:
        # Pass every subscription up, not only the first per topic: each joiner gets a heartbeat.
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    configure_server(sock, endpoint, settings)
    ensure_ipc_dir(endpoint)
    sock.bind(endpoint)
    if endpoint.startswith("ipc://"):
        os.chmod(endpoint[len("ipc://"):], 0o600)
    return sock


def connect(ctx: zmq.Context, kind: int, endpoint: str, settings: Settings) -> zmq.Socket:
    sock = client_socket(ctx, kind, endpoint, settings)
    sock.connect(endpoint)
    return sock


def client_socket(ctx: zmq.Context, kind: int, endpoint: str, settings: Settings) -> zmq.Socket:
    """A configured client socket, not yet connected (attach a monitor first to see every event)."""
    from bus.security import configure_client

    sock = ctx.socket(kind)
    _apply_common(sock, endpoint, settings, client=True)
    if kind == zmq.DEALER:
        # Do not queue into a pipe whose peer is absent: the outbox owns retries.
        sock.setsockopt(zmq.IMMEDIATE, 1)
    if kind == zmq.SUB:
        sock.setsockopt(zmq.RCVHWM, settings.bus.sndhwm)
    configure_client(sock, endpoint, settings)
    return sock
