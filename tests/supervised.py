"""The repository's own supervisord.conf, run for real in an isolated V7_HOME.

supervisord runs in the foreground (-n) in its own session, so the test that started it can
always stop it (and, failing that, kill its whole process group) by its pid.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.harness import REPO, Instance

SUPERVISORD = str(Path(sys.executable).parent / "supervisord")


def supervisor_config(programs: tuple[str, ...] | None = None, extra: str = "") -> str:
    """supervisord.conf with only `programs` (all when None), plus the sections in `extra`."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string((REPO / "supervisord.conf").read_text() + extra)
    extra_parser = configparser.ConfigParser(interpolation=None)
    extra_parser.read_string(extra)
    added = [s.removeprefix("program:") for s in extra_parser.sections() if s.startswith("program:")]
    if programs is not None:
        keep = {*programs, *added}
        for section in parser.sections():
            if section.startswith("program:") and section.removeprefix("program:") not in keep:
                parser.remove_section(section)
            elif section.startswith("group:"):
                listed = [p.strip() for p in parser[section]["programs"].replace("\n", ",").split(",") if p.strip()]
                kept = [p for p in listed if p in keep]
                if kept:
                    parser[section]["programs"] = ",".join(kept)
                else:  # supervisord refuses an empty group
                    parser.remove_section(section)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().replace("%(here)s", str(REPO))


@contextlib.contextmanager
def supervised(inst: Instance, programs: tuple[str, ...] | None = None, extra: str = "",
               prefix: tuple[str, ...] = ()) -> Iterator[subprocess.Popen]:
    """supervisord running `programs` of the repository's group (all when None) in `inst`'s home;
    `prefix` runs it through another command (`ip netns exec NS`, which execs it: same pid)."""
    path = inst.home / "supervisord.conf"
    path.write_text(supervisor_config(programs, extra))
    (inst.home / "run").mkdir(mode=0o700, exist_ok=True)
    os.chmod(inst.home / "run", 0o700)
    (inst.home / "logs" / "supervisor").mkdir(parents=True, exist_ok=True)
    log = (inst.home / "logs" / "supervisord.out").open("wb")
    proc = subprocess.Popen([*prefix, SUPERVISORD, "-n", "-c", str(path)], env=inst.env, cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # supervisord stops its programs, then exits
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()


def supervisor_logs(inst: Instance) -> str:
    """The tail of each program's supervisord log: what a failed wait shows."""
    logs = inst.home / "logs" / "supervisor"
    return "".join(f"\n--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(logs.glob("*.log")))


@contextlib.contextmanager
def supervised_group(inst: Instance, timeout: float = 60) -> Iterator[subprocess.Popen]:
    """The one way to start the whole group under supervisord: the repository's group in `inst`'s
    home, returned once `v7 wait-up` says every program is up (what `make run` ends with)."""
    with supervised(inst) as proc:
        up = inst.run_cli("wait-up", "--timeout", str(int(timeout)), timeout=timeout + 30)
        assert up.returncode == 0, up.stdout + up.stderr + supervisor_logs(inst)
        yield proc
