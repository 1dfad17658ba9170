"""The helper processes a chaos test starts (load, reader, watcher): spawned in their own
session, logged under the instance's logs/, and killed by pid whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.harness import REPO, Instance


@contextlib.contextmanager
def helper_processes() -> Iterator[list[subprocess.Popen]]:
    """The helper processes this test starts, killed by pid (with their groups) whatever happens."""
    procs: list[subprocess.Popen] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def spawn(inst: Instance, module: str, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    """`python -m module args` with `inst`'s environment; `prefix` runs it through another command
    (`ip netns exec NS`, which execs it, so the pid is the module's own)."""
    log = inst.log_path(module.rsplit(".", 1)[-1])
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        return subprocess.Popen([*prefix, sys.executable, "-m", module, *args], env=inst.env, cwd=REPO, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def write_result(path: Path, result: Any) -> None:
    """A helper process's result as JSON, replaced whole, so the test never reads half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
