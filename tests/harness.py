"""Test harness: isolated instances and real actor processes, cleaned up by pid.

Every test that starts processes gets its own V7_HOME (state, journal, ipc sockets) and its
own block of free loopback ports, so tests never share a bus or a port.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import ACTORS, Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
V7 = str(Path(sys.executable).parent / "v7")
PORTS_PER_INSTANCE = len(ACTORS) + 2


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(count: int = PORTS_PER_INSTANCE) -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free block of loopback ports")


@dataclass
class Instance:
    """One isolated v7 instance: a home directory, its settings, and the processes started in it."""

    home: Path
    port_base: int
    extra_toml: str = ""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.write_config(self.extra_toml)

    def write_config(self, extra_toml: str = "") -> None:
        self.extra_toml = extra_toml
        text = f'port_base = {self.port_base}\n' + extra_toml
        if "[dashboard]" not in extra_toml:
            text += f"\n[dashboard]\nport = {self.port_base + len(ACTORS)}\n"
        (self.home / "runtime.toml").write_text(text)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("V7_") or k.startswith("V7_TEST")}
        env["V7_HOME"] = str(self.home)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @property
    def settings(self) -> Settings:
        return load_settings(self.env)

    @property
    def state_dir(self) -> Path:
        return self.settings.state_path

    def log_path(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def start(self, actor: str, *args: str, name: str | None = None) -> subprocess.Popen:
        name = name or actor
        self.log_path(name).parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path(name).open("ab")
        proc = subprocess.Popen([V7, "run", actor, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=REPO, start_new_session=True)
        self.procs[name] = proc
        return proc

    def run_cli(self, *args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([V7, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=REPO, check=check)

    def kill(self, name: str, sig: int = signal.SIGKILL, wait: float = 10) -> int | None:
        proc = self.procs[name]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=5)

    def stop_all(self) -> None:
        for proc in list(self.procs.values()):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def logs(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        logs = "\n".join(f"--- {n} ---\n{self.logs(n)[-3000:]}" for n in self.procs)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")

    def wait_hub(self, timeout: float = 20, proc: subprocess.Popen | None = None) -> None:
        """Until the hub answers snapshot requests; with `proc` (the writer), fail at once if it exits."""
        from bus.subscriber import SnapshotError, request_snapshot

        def up() -> bool:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"state writer exited {proc.returncode}:\n{self.logs('state_writer')[-3000:]}")
            try:
                request_snapshot(self.settings, keys=[], timeout_s=0.5)
                return True
            except SnapshotError:
                return False

        self.wait_for(up, timeout, "the hub to answer snapshots")

    def start_writer(self, *args: str, timeout: float = 30) -> subprocess.Popen:
        """The one way to start the state writer: start it and wait until it serves snapshots."""
        proc = self.start("state_writer", *args)
        self.wait_hub(timeout, proc=proc)
        return proc


@contextlib.contextmanager
def instance(tmp_path: Path, extra_toml: str = "") -> Iterator[Instance]:
    inst = Instance(home=tmp_path / "v7home", port_base=free_port_base(), extra_toml=extra_toml)
    try:
        yield inst
    finally:
        inst.stop_all()
