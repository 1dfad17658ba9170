"""Real Prometheus and Alertmanager for the observability tests: found on PATH, started on
loopback ports in the test's directory, ready before use, and stopped by pid afterwards.

Debian ships the Alertmanager binary as `prometheus-alertmanager` (upstream: `alertmanager`);
.ci/run installs the packages `prometheus` and `prometheus-alertmanager`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import ACTORS
from tests.harness import Instance, free_port_base
from tests.support.metrics import metrics_url

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
ALERTMANAGER = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
AMTOOL = shutil.which("amtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; .ci/run installs it)"
)
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="prometheus/promtool not installed (Debian package prometheus; .ci/run installs it)",
)
needs_amtool = pytest.mark.skipif(
    AMTOOL is None, reason="amtool not installed (Debian package prometheus-alertmanager; .ci/run installs it)"
)
needs_alertmanager = pytest.mark.skipif(
    ALERTMANAGER is None or AMTOOL is None,
    reason="alertmanager/amtool not installed (Debian package prometheus-alertmanager; .ci/run installs it)",
)


def get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def get_json(url: str, timeout: float = 5) -> Any:
    return json.loads(get(url, timeout))


def query(base: str, expr: str) -> dict[str, Any]:
    return get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))


def _ready(url: str) -> bool:
    try:
        get(url, timeout=1)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _server(argv: list[str], log_path: Path, ready_url: str, what: str, timeout: float = 30) -> Iterator[None]:
    log = log_path.open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(ready_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what} did not become ready (exit {proc.poll()}):\n"
                                     f"{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


@contextlib.contextmanager
def prometheus(config: Path, workdir: Path) -> Iterator[str]:
    """A Prometheus server on a free loopback port; yields its base URL."""
    assert PROMETHEUS is not None
    port = free_port_base(1)
    base = f"http://127.0.0.1:{port}"
    argv = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"]
    with _server(argv, workdir / "prometheus.log", f"{base}/-/ready", "prometheus"):
        yield base


@contextlib.contextmanager
def alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """An Alertmanager on a free loopback port, clustering off (it would bind 0.0.0.0:9094); yields its base URL."""
    assert ALERTMANAGER is not None
    port = free_port_base(1)
    base = f"http://127.0.0.1:{port}"
    argv = [ALERTMANAGER, f"--config.file={config}", f"--storage.path={workdir / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
    with _server(argv, workdir / "alertmanager.log", f"{base}/-/ready", "alertmanager"):
        yield base


def wait_metrics_endpoints(inst: Instance, timeout: float = 60) -> None:
    """Until every actor of the group answers on its /metrics endpoint."""
    urls = [metrics_url(inst, actor) for actor in ACTORS]
    inst.wait_for(lambda: all(_ready(url) for url in urls), timeout, "every actor's metrics endpoint")
