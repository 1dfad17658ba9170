"""Helpers for diagnostics tests: a fast-heartbeat instance, reading runtime_diagnostics."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from tests.harness import Instance, instance

ROUTER_IDLE_S = 3
# heartbeat_s 0.5: actors heartbeat every 1 s, so an actor is stale after 3 missed = 3 s.
FAST_TOML = """
strategy_config = "{home}/strategy_config.json"
[bus]
heartbeat_s = 0.5
[loop_s]
diagnostics = 0.5
"""


def strategy_config(**liveness: Any) -> dict[str, Any]:
    return {"diagnostics": {
        "liveness": {"max_idle_signals_seconds": 600, "max_idle_orders_seconds": 1200,
                     "max_idle_exits_seconds": 3600, "max_idle_router_events_seconds": ROUTER_IDLE_S, **liveness},
        "heartbeat_missed_intervals": 3,
        "publish_interval_seconds": 1,
        "supervisor_poll_seconds": 1,
    }}


def fast_instance(tmp_path: Path, **liveness: Any):
    home = tmp_path / "v7home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "strategy_config.json").write_text(json.dumps(strategy_config(**liveness)))
    return instance(tmp_path, FAST_TOML.format(home=home))


def read_diagnostics(inst: Instance) -> dict[str, Any] | None:
    path = inst.state_dir / "runtime_diagnostics.json"
    try:
        return json.loads(path.read_text())["runtime_diagnostics"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def wait_diagnostics(inst: Instance, predicate, what: str, timeout: float = 30) -> dict[str, Any]:
    """Poll runtime_diagnostics.json (written by the state writer) until `predicate(block)` holds."""
    found: dict[str, Any] = {}

    def check() -> bool:
        block = read_diagnostics(inst)
        if block is not None and predicate(block):
            found.update(block)
            return True
        return False

    inst.wait_for(check, timeout, what, interval=0.2)
    return found


def stop_actors_first(inst: Instance) -> None:
    """SIGTERM the actors while the hub still answers (their outboxes flush at once), then the rest."""
    for name in [n for n in inst.procs if n != "state_writer"]:
        inst.kill(name, signal.SIGTERM, wait=15)
    inst.stop_all()
