"""Operations commands: `v7 check-config`, `v7 wait-up`, `v7 status`."""

from __future__ import annotations

import argparse
import json
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from bus.subscriber import SnapshotError, request_snapshot, request_status
from config.settings import ACTORS, ConfigError, Settings, load_settings


def supervisor_proxy(settings: Settings) -> Any:
    from supervisor.xmlrpc import SupervisorTransport

    sock = settings.run_path / "supervisor.sock"
    transport = SupervisorTransport(None, None, f"unix://{sock}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisor_states(settings: Settings) -> dict[str, str]:
    """program name -> supervisord state name (RUNNING, BACKOFF, FATAL...)."""
    info = supervisor_proxy(settings).supervisor.getAllProcessInfo()
    return {p["name"]: p["statename"] for p in info}


def check_config(settings: Settings) -> list[str]:
    """Every configuration file an actor reads, validated now; returns a summary line per file.

    LIVE also loads the API keys the gateway will load (key file or environment), so a missing
    variable or a key file others can read stops `make run` here, naming it, rather than leaving
    the gateway restarting under supervisord. The venue itself is not contacted: the account
    checks (position mode, permissions, ...) run in the gateway at start-up."""
    from config.validation import validate_all

    lines = validate_all(settings)
    if settings.mode == "LIVE":
        from actors.exchange.venue import credentials
        from exchange.binance_usdm.credentials import CredentialsError

        where = f"exchange.key_file ({settings.exchange.key_file})" if settings.exchange.key_file else \
            "environment (V7_EXCHANGE_API_KEY, V7_EXCHANGE_API_SECRET)"
        try:
            credentials(settings)
        except CredentialsError as exc:
            raise ConfigError(f"invalid configuration: LIVE API keys from {where}: {exc}") from None
        lines.append(f"ok   LIVE on {settings.exchange.network}: API keys from {where}")
    return lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-config", help="validate every configuration file; exit 2 naming a bad key")
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser("wait-up", help="wait until every supervised program is RUNNING and the hub answers")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=cmd_wait_up)
    p = sub.add_parser("status", help="hub status (seq, epoch, pid, degraded, journal size) as JSON")
    p.set_defaults(func=cmd_status)


def cmd_check_config(_args: argparse.Namespace) -> int:
    for line in check_config(load_settings()):
        print(line)
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        status = request_status(settings, timeout_s=3.0)
    except SnapshotError as exc:
        print(f"hub not answering: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status, sort_keys=True))
    return 0


def cmd_wait_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    deadline = time.monotonic() + args.timeout
    states: dict[str, str] = {}
    hub = False
    while time.monotonic() < deadline:
        try:
            states = supervisor_states(settings)
        except (OSError, xmlrpc.client.Fault):
            states = {}
        try:
            request_snapshot(settings, keys=[], timeout_s=1.0)
            hub = True
        except SnapshotError:
            hub = False
        if states and hub and all(s == "RUNNING" for s in states.values()):
            width = max(len(n) for n in states)
            for name, state in sorted(states.items()):
                print(f"{name:<{width}} {state}")
            print(f"state files: {Path(settings.state_path)}")
            print(f"dashboard:   http://{settings.dashboard.host}:{settings.dashboard.port}")
            last_port = settings.port_base + len(ACTORS) - 1
            print(f"metrics:     http://{settings.metrics_host}:{settings.port_base}..{last_port}/metrics")
            return 0
        time.sleep(0.5)
    print(f"not up after {args.timeout:.0f}s: hub={'up' if hub else 'down'} programs={states}", file=sys.stderr)
    return 1
