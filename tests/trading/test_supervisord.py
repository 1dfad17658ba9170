"""supervisord.conf: loads with supervisor's own option parser, and the group starts for real.

supervisord has no config check of its own, so the config is parsed the way supervisord
parses it (supervisor.options.ServerOptions), then a real supervisord runs the whole group in
a temp home and is watched through its XML-RPC interface.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from cli.ops import supervisor_proxy
from config.settings import ACTORS
from tests.harness import REPO, Instance

CONF = REPO / "supervisord.conf"
V7_BIN = REPO / ".venv" / "bin" / "v7"
SUPERVISORD = Path(sys.executable).parent / "supervisord"
TRADING = {"exchange", "executor", "router", "exit_scanner", "sync"}
SEVEN_FILES = ("positions_state", "positions_ledger", "kpis_v7", "nav_state", "risk_snapshot", "router_state",
               "factor_diagnostics")


def _prepare_home(home: Path) -> None:
    (home / "logs" / "supervisor").mkdir(parents=True, exist_ok=True)
    (home / "run").mkdir(parents=True, exist_ok=True)
    os.chmod(home / "run", 0o700)


def test_config_loads_with_supervisors_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _prepare_home(tmp_path)
    monkeypatch.setenv("V7_HOME", str(tmp_path))
    options = ServerOptions()
    options.realize(args=["-c", str(CONF)])
    groups = {g.name: g for g in options.process_group_configs}
    assert groups["hub"].priority < groups["v7"].priority  # the writer starts first and stops last
    assert [p.name for p in groups["hub"].process_configs] == ["state_writer"]
    programs = {p.name: p for g in groups.values() for p in g.process_configs}
    assert {p.name for p in groups["v7"].process_configs} >= TRADING
    for name, program in programs.items():
        assert name in ACTORS
        assert program.command == f"{REPO}/.venv/bin/v7 run {name}"  # no shell: SIGTERM reaches Python
        assert program.autorestart is not False and program.stopsignal == 15
        assert program.stopwaitsecs >= 10 and program.stopasgroup and program.killasgroup
    assert programs["exchange"].priority < programs["executor"].priority
    assert programs["state_writer"].stopwaitsecs >= max(p.stopwaitsecs for p in programs.values())


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[Instance, subprocess.Popen]]:
    if not V7_BIN.exists():
        pytest.skip(f"{V7_BIN} missing: supervisord.conf runs the repo's own .venv (make venv)")
    from tests.harness import free_port_base

    inst = Instance(home=tmp_path / "home", port_base=free_port_base())
    _prepare_home(inst.home)
    log = (inst.home / "supervisord.out").open("ab")
    proc = subprocess.Popen([str(SUPERVISORD), "-n", "-c", str(CONF)], env=inst.env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=REPO)
    try:
        yield inst, proc
    finally:
        if proc.poll() is None:
            try:
                supervisor_proxy(inst.settings).supervisor.shutdown()
            except (OSError, xmlrpc.client.Error):
                proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _states(inst: Instance) -> dict[str, str]:
    try:
        return {p["name"]: p["statename"] for p in supervisor_proxy(inst.settings).supervisor.getAllProcessInfo()}
    except (OSError, xmlrpc.client.Error):
        return {}


def test_the_group_starts_for_real(supervised: tuple[Instance, subprocess.Popen]) -> None:
    inst, proc = supervised
    up = inst.run_cli("wait-up", "--timeout", "90", timeout=120)  # what `make run` ends with
    assert up.returncode == 0, up.stderr + (inst.home / "supervisord.out").read_text()
    states = _states(inst)
    assert TRADING | {"state_writer"} <= set(states) and set(states.values()) == {"RUNNING"}, states
    # Within 30 s every state file this group produces exists and validates.
    def files_valid() -> bool:
        if not all((inst.state_dir / f"{k}.json").exists() for k in SEVEN_FILES):
            return False
        out = inst.run_cli("validate").stdout
        return all(f"ok   {k}.json" in out for k in SEVEN_FILES)

    inst.wait_for(files_valid, 30, "the seven state files to exist and validate")
    nav = json.loads((inst.state_dir / "nav_state.json").read_text())
    assert nav["nav_total"] > 0 and nav["dd_state"] in {"NORMAL", "CAUTION", "DEFENSIVE"}
    # Stop the way `make stop` does; every program ends cleanly, the writer last.
    rpc = supervisor_proxy(inst.settings).supervisor
    results = rpc.stopAllProcesses(True)
    assert all(r["status"] == 80 for r in results), results  # 80 = SUCCESS
    info = rpc.getAllProcessInfo()
    assert {p["statename"] for p in info} == {"STOPPED"}, info
    for p in info:
        log = Path(p["stdout_logfile"]).read_text(errors="replace")
        assert "Traceback" not in log, f"{p['name']}:\n{log[-3000:]}"
    rpc.shutdown()
    assert proc.wait(timeout=60) == 0
