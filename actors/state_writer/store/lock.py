"""One state writer per positions database, like one per state directory.

Two writers with different state directories but the same `db_url` would interleave their
sequences in one set of tables. SQLite: an flock on `<db>.lock` beside the file. PostgreSQL:
a session advisory lock keyed by the schema, held on a dedicated connection. Both are
released by the kernel or the server when the holder dies, even on kill -9.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from actors.state_writer.store.schema import StoreError, sqlite_path


class StoreLocked(StoreError):
    """Another state writer uses this positions database. This one must not touch it."""


class StoreLock:
    def __init__(self, engine: Engine, url: str, schema: str | None) -> None:
        self._engine = engine
        self._path = sqlite_path(url)
        self._schema = schema or "public"
        self._fd: int | None = None
        self._conn: Connection | None = None

    def acquire(self) -> None:
        if self._engine.dialect.name == "sqlite":
            if self._path is not None:
                self._acquire_file(self._path.with_name(self._path.name + ".lock"))
            return
        self._acquire_advisory()

    def _acquire_file(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(f"positions database {self._path} is in use by state writer pid {holder}") from None
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the flock is the guard; the pid only names the holder (a full disk refuses it)

    def _acquire_advisory(self) -> None:
        key = f"v7-positions-store:{self._schema}"
        try:
            conn = self._engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key}).scalar()
            conn.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"db_url: cannot reach the positions database: {exc}") from None
        if not got:
            conn.close()
            raise StoreLocked(f"positions store schema {self._schema!r} is in use by another state writer")
        conn.execute(text("SELECT set_config('application_name', :n, false)"),
                     {"n": f"v7 state_writer pid {os.getpid()}"})
        conn.commit()
        self._conn = conn

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                # Closing a pooled connection would keep the session (and its lock) alive.
                self._conn.invalidate()
            except SQLAlchemyError:
                pass
            self._conn = None
