"""Headless Chromium driven over the DevTools protocol (one websocket, no driver process).

    with chromium(tmp_path) as browser:
        page = browser.open("http://127.0.0.1:8050/")
        page.wait_for("document.body.dataset.version !== undefined", timeout=20)
        page.screenshot(path)

The browser runs in its own session and is killed by pid on exit. `CHROMIUM` is None when
Debian's chromium is not installed; callers skip with a reason then.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
    "--window-size=1400,2000",
]


class Page:
    def __init__(self, ws_url: str) -> None:
        self._ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self._ids = itertools.count(1)

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self._ws.recv())
            if reply.get("id") != msg_id:
                continue  # an event
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply.get("result", {})
        raise TimeoutError(f"{method}: no reply in {timeout}s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError as exc:  # e.g. the document is still loading: no body yet
                value = exc
            if value and not isinstance(value, Exception):
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what or expression} (last {value!r})")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()


class Browser:
    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc = proc
        self.port = port
        self.pages: list[Page] = []

    def open(self, url: str) -> Page:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?{url}", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as resp:
            target = json.load(resp)
        page = Page(target["webSocketDebuggerUrl"])
        self.pages.append(page)
        page.call("Page.enable")
        page.call("Runtime.enable")
        return page


@contextlib.contextmanager
def chromium(workdir: Path, timeout: float = 30.0) -> Iterator[Browser]:
    assert CHROMIUM is not None
    profile = workdir / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    log = (workdir / "chromium.log").open("wb")
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {proc.poll()}); see {workdir / 'chromium.log'}")
            time.sleep(0.1)
        browser = Browser(proc, int(port_file.read_text().split()[0]))
        yield browser
    finally:
        for page in locals().get("browser", Browser(proc, 0)).pages:
            page.close()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()
