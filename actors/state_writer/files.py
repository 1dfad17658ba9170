"""State files on disk: coalesced, atomic, off the ingest thread.

The ingest loop marks documents dirty as messages commit; once per tick it hands the latest
version of each dirty document to this writer thread. A burst of a thousand positions
messages inside one tick costs one file write. If the thread is still busy with the previous
tick, newer versions replace older pending ones (latest wins), so writes stay bounded by
ticks, never by message rate.

A failed write (disk full, read-only) leaves the previous file in place (atomic_write) and
keeps the document pending; it is retried on the next tick.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actors.base.atomic_file import TEMP_MARK, atomic_write, fsync_dir

log = logging.getLogger(__name__)


def render(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False).encode() + b"\n"


class StateFileWriter:
    def __init__(
        self,
        directory: Path,
        on_write: Callable[[str, float], None] | None = None,
        on_error: Callable[[str, OSError], None] | None = None,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._on_write = on_write
        self._on_error = on_error
        self._pending: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self._busy = False
        self._stop = False
        self.writes = 0
        self.failing = False
        self._thread = threading.Thread(target=self._run, name="state-files", daemon=True)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def remove_stale_temps(self) -> int:
        """Temp files left by a writer that died mid-write (called while holding the lock)."""
        removed = 0
        for tmp in self.directory.glob(f".*{TEMP_MARK}*"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    def start(self) -> None:
        self._thread.start()

    def submit(self, documents: dict[str, dict[str, Any]]) -> None:
        """Queue the latest version of each document (rendered now, written by the thread)."""
        if not documents:
            return
        rendered = {key: render(doc) for key, doc in documents.items()}
        with self._cond:
            self._pending.update(rendered)
            self._cond.notify()

    def write_now(self, documents: dict[str, dict[str, Any]]) -> None:
        """Synchronous write of every given document (start-up). A document the disk refuses
        stays pending for the writer thread, which retries it (the old file stays meanwhile)."""
        failed: dict[str, bytes] = {}
        for key, doc in documents.items():
            data = render(doc)
            try:
                self._write(key, data, sync_dir=False)
            except OSError as exc:
                failed[key] = data
                self._report(key, exc)
        try:
            fsync_dir(self.directory)
        except OSError as exc:
            log.error("state directory %s not synced (%s)", self.directory, exc)
        with self._cond:
            self.failing = bool(failed)
            for key, data in failed.items():
                self._pending.setdefault(key, data)
            self._cond.notify()

    def _report(self, key: str, exc: OSError) -> None:
        if not self.failing:
            log.error("state file %s not written (%s); last good file stays", key, exc)
        if self._on_error:
            self._on_error(key, exc)

    def drain(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _write(self, key: str, data: bytes, *, sync_dir: bool = True) -> None:
        started = time.perf_counter()
        atomic_write(self.path(key), data, sync_dir=sync_dir)
        self.writes += 1
        if self._on_write:
            self._on_write(key, time.perf_counter() - started)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop and not self._pending:
                    return
                batch, self._pending = self._pending, {}
                self._busy = True
            failed: dict[str, bytes] = {}
            for key, data in batch.items():
                try:
                    self._write(key, data)
                except OSError as exc:
                    failed[key] = data
                    self._report(key, exc)
            with self._cond:
                if self.failing and not failed:
                    log.warning("state files written again; the files are current")
                self.failing = bool(failed)
                for key, data in failed.items():
                    self._pending.setdefault(key, data)
                self._busy = False
                self._cond.notify_all()
                if failed and not self._stop:
                    self._cond.wait(0.5)  # back off; the condition may clear by itself
                if self._stop and failed:
                    return
