"""Exclusive lock on the state directory: one state writer per directory, by construction.

A second bind to an ipc path silently steals it from the first writer, so the socket cannot
be the guard; this flock is. The kernel releases it when the holder dies, even on kill -9.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = ".writer.lock"


class StateDirLocked(Exception):
    """Another state writer owns this directory. This process must exit without touching it."""

    def __init__(self, directory: Path, holder_pid: int | None) -> None:
        who = f"pid {holder_pid}" if holder_pid else "an unknown process"
        super().__init__(f"state directory {directory} is locked by state writer {who}")
        self.holder_pid = holder_pid


class StateDirLock:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_pid(fd)
            os.close(fd)
            raise StateDirLocked(self.directory, holder) from None
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            os.fsync(fd)
        except OSError:
            # The flock is the guard; the pid only names the holder. A full disk must not stop
            # the writer from starting (it then serves degraded until the disk takes writes).
            pass

    @staticmethod
    def _read_pid(fd: int) -> int | None:
        try:
            return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> StateDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
