"""Diagnostics under a real supervisord: program states are read over XML-RPC, crash loops are flagged.

supervisord runs the repository's own supervisord.conf (plus one program that always fails) in
an isolated V7_HOME, in the foreground (-n) so it is cleaned up by its pid.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.ops import supervisor_proxy, supervisor_states
from tests.diagnostics.helpers import fast_instance, wait_diagnostics
from tests.harness import Instance
from tests.supervised import supervised
from tests.support.metrics import metrics_text

CRASHY = """
[program:crashy]
command=/bin/sh -c "exit 3"
autostart=true
autorestart=true
startsecs=1
startretries=2
stdout_logfile=%(ENV_V7_HOME)s/logs/supervisor/%(program_name)s.log
"""


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Instance]:
    with fast_instance(tmp_path) as inst, supervised(inst, ("state_writer", "diagnostics", "dashboard"), CRASHY):
        yield inst


def test_supervised_states_and_crash_loops_are_reported(group: Instance) -> None:
    def running() -> bool:
        try:
            states = supervisor_states(group.settings)
        except OSError:
            return False
        return all(states.get(p) == "RUNNING" for p in ("state_writer", "diagnostics", "dashboard"))

    group.wait_for(running, 60, "state_writer, diagnostics and dashboard RUNNING under supervisord")
    block = wait_diagnostics(
        group, lambda b: b["supervisor"]["reachable"] and b["actors"].get("crashy", {}).get("crash_loop")
        and b["actors"].get("dashboard", {}).get("supervisor_state") == "RUNNING"
        and b["actors"]["dashboard"]["stale"] is False, "supervisord states in diagnostics",
        timeout=60)
    assert block["actors"]["dashboard"]["supervisor_state"] == "RUNNING"
    assert block["actors"]["crashy"]["supervisor_state"] in ("BACKOFF", "FATAL")
    assert block["actors"]["crashy"]["stale"] is True
    metrics = metrics_text(group, "diagnostics")
    assert 'v7_diag_actor_crash_loop{actor="crashy"} 1.0' in metrics
    assert 'v7_diag_actor_crash_loop{actor="dashboard"} 0.0' in metrics
    assert "v7_diag_supervisor_reachable 1.0" in metrics

    # An operator stop is visible by name as well.
    supervisor_proxy(group.settings).supervisor.stopProcess("v7:dashboard")
    block = wait_diagnostics(group, lambda b: b["actors"]["dashboard"]["supervisor_state"] == "STOPPED",
                             "the stopped dashboard reported")
    assert block["actors"]["dashboard"]["stale"] is True
    assert "supervisord STOPPED" in block["actors"]["dashboard"]["reason"]
