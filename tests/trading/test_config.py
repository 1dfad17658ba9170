"""A bad configuration stops the actor at start-up with a message naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import REPO_CONFIG_DIR
from tests.harness import Instance


def with_config(v7: Instance, strategy: dict | None = None, risk: dict | None = None, extra_toml: str = "") -> None:
    lines = []
    for name, doc in (("strategy_config", strategy), ("risk_limits", risk)):
        if doc is not None:
            path = v7.home / f"{name}.json"
            path.write_text(json.dumps(doc))
            lines.append(f'{name} = "{path}"')
    v7.write_config("\n".join(lines) + "\n" + extra_toml)


def repo_json(name: str) -> dict:
    return json.loads((REPO_CONFIG_DIR / name).read_text())


@pytest.mark.parametrize(("actor", "key"), [("executor", "router.max_repricez"), ("router", "router.max_repricez")])
def test_unknown_strategy_key_stops_the_actor(v7: Instance, actor: str, key: str) -> None:
    doc = repo_json("strategy_config.json")
    doc["router"]["max_repricez"] = 3
    with_config(v7, strategy=doc)
    result = v7.run_cli("run", actor, timeout=60)
    assert result.returncode == 2
    assert key in result.stderr and "unknown key" in result.stderr
    check = v7.run_cli("check-config")
    assert check.returncode == 2 and key in check.stderr


def test_bad_risk_value_names_the_key(v7: Instance) -> None:
    doc = repo_json("risk_limits.json")
    doc["caps"]["max_open_positions"] = -1
    with_config(v7, risk=doc)
    result = v7.run_cli("run", "executor", timeout=60)
    assert result.returncode == 2 and "caps.max_open_positions" in result.stderr


def test_unknown_runtime_key_stops_the_paper_exchange(v7: Instance) -> None:
    with_config(v7, extra_toml="[paper]\ntick = 0.1\n")
    result = v7.run_cli("run", "exchange", timeout=60)
    assert result.returncode == 2 and "paper.tick" in result.stderr and "unknown key" in result.stderr


def test_symbol_without_instrument_names_the_key(v7: Instance) -> None:
    with_config(v7, extra_toml='symbols = ["BTCUSDT", "DOGEUSDT"]\n')
    result = v7.run_cli("run", "sync", timeout=60)
    assert result.returncode == 2 and "paper.instruments" in result.stderr and "DOGEUSDT" in result.stderr


def test_repo_configs_are_valid(v7: Instance) -> None:
    result = v7.run_cli("check-config")
    assert result.returncode == 0, result.stderr
    assert "strategy_config.json" in result.stdout and "risk_limits.json" in result.stdout


def test_diagnostics_and_nav_anomalies_blocks_are_unchanged() -> None:
    # Other actors build on these two blocks exactly as specified (seeds 001 and 004).
    assert repo_json("risk_limits.json")["nav_anomalies"] == {
        "enabled": True, "max_multiplier_intraday": 3.0, "max_gap_abs_usd": 20000.0}
    assert repo_json("strategy_config.json")["diagnostics"]["liveness"] == {
        "enabled": True, "max_idle_signals_seconds": 600, "max_idle_orders_seconds": 1200,
        "max_idle_exits_seconds": 3600, "max_idle_router_events_seconds": 1800}


def test_no_trading_module_writes_state_files() -> None:
    # Only the state writer writes logs/state; modules that write files elsewhere must not name it.
    root = Path(__file__).resolve().parents[2]
    for package in ("exchange", "actors/exchange", "actors/executor", "actors/router", "actors/exit_scanner",
                    "actors/sync"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text()
            for needle in ("logs/state", "STATE_DIR", "state_dir", "state_path"):
                assert needle not in text, f"{path.relative_to(root)} mentions {needle}"


@pytest.mark.parametrize("mirror", ["{state}", "{state}/mirror", "{state}/a/b"])
def test_mirror_dir_inside_the_state_directory_is_refused(v7: Instance, mirror: str) -> None:
    state = v7.home / "logs" / "state"
    with_config(v7, extra_toml=f'mirror_dir = "{mirror.format(state=state)}"\n')
    result = v7.run_cli("check-config")
    assert result.returncode != 0
    assert "mirror_dir" in result.stdout + result.stderr


def test_mirror_dir_beside_the_state_directory_is_fine(v7: Instance) -> None:
    with_config(v7, extra_toml=f'mirror_dir = "{v7.home / "logs" / "mirror"}"\n')
    result = v7.run_cli("check-config")
    assert result.returncode == 0, result.stdout + result.stderr
