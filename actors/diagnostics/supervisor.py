"""Ask supervisord (XML-RPC on $V7_HOME/run/supervisor.sock) for every program's state.

The call runs on its own thread: a supervisord that hangs must not stall the diagnostics
loop (and so its heartbeats). A probe that fails or is overdue reports "unreachable", and
the states are then unknown (None), never assumed RUNNING.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import xmlrpc.client
from dataclasses import dataclass
from datetime import datetime

from bus.messages import utc_now
from cli.ops import supervisor_states
from config.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SupervisorReading:
    states: dict[str, str] | None  # None = unknown
    checked_at: datetime | None
    detail: str


class SupervisorProbe:
    def __init__(self, settings: Settings, interval_s: float) -> None:
        self._settings = settings
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._reading = SupervisorReading(None, None, "not asked yet")
        self._last_ok = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def reading(self) -> SupervisorReading:
        with self._lock:
            reading = self._reading
        # A probe stuck in a call keeps its last answer; past three intervals that answer is stale.
        if reading.states is not None and time.monotonic() - self._last_ok > 3 * self._interval_s:
            return SupervisorReading(None, reading.checked_at, "supervisord not answering")
        return reading

    def probe_once(self) -> SupervisorReading:
        try:
            states = supervisor_states(self._settings)
        except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
            return SupervisorReading(None, utc_now(), f"supervisord unreachable: {type(exc).__name__}: {exc}"[:512])
        self._last_ok = time.monotonic()
        return SupervisorReading(states, utc_now(), "")

    def _run(self) -> None:
        while not self._stop.is_set():
            reading = self.probe_once()
            with self._lock:
                if reading.states is None and self._reading.detail != reading.detail:
                    log.info("%s (program states unknown)", reading.detail)
                self._reading = reading
            self._stop.wait(self._interval_s)
