"""Atomic file replacement: a reader sees the old file or the new one, never a torn one.

Used by the state writer (state files, snapshots) and by sync's mirror; it knows nothing
about where state lives, which is the state writer's business alone.

temp file in the same directory -> write -> flush -> fsync -> os.replace -> fsync the directory.
Mode 0644. On any error the temp file is removed and the old file stays untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o644
TEMP_MARK = ".tmp."


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    directory = path.parent
    tmp = directory / f".{path.name}{TEMP_MARK}{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, FILE_MODE)  # umask must not make it unreadable to other processes
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if sync_dir:
        fsync_dir(directory)
