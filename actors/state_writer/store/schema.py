"""Engine set-up, the schema version table, and migrations.

A fresh database gets every table of `tables.py` and is stamped `SCHEMA_VERSION` in one
transaction. An older database is upgraded by `MIGRATIONS[v]` (v = old + 1 ... current),
each step and its version bump in one transaction. A database newer than this code is
refused: running old code on a newer schema could silently drop what it does not know.

SQLite (the embedded default) runs in WAL mode, with transactional DDL (the driver's own
implicit transactions are off; SQLAlchemy emits BEGIN IMMEDIATE, so the write lock is
taken up front). PostgreSQL can keep the tables in their own schema (`store.db_schema`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from actors.state_writer.store.tables import Base, SchemaVersion

SCHEMA_VERSION = 1

# version -> step that upgrades a database from version - 1 (runs inside one transaction).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


class StoreError(Exception):
    """The positions store cannot be opened or used. The state writer stops without ACKing."""


class StoreSchemaError(StoreError):
    """The database schema is not one this code can use (newer, or not a v7 store)."""


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(
    url: str, *, schema: str | None = None, synchronous: str = "FULL", read_only: bool = False
) -> Engine:
    """An engine for the store. `read_only` (CLI fallbacks) never creates or locks anything."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"db_url: not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if schema:
            raise StoreError("store.db_schema: only for PostgreSQL; leave it unset with SQLite")
        return _sqlite_engine(url, synchronous, read_only)
    try:
        engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"db_url: cannot use {parsed.render_as_string(hide_password=True)}: {exc}") from None
    if schema:
        if not read_only:
            try:
                with engine.begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            except SQLAlchemyError as exc:
                raise StoreError(f"db_url: cannot create schema {schema!r}: {exc}") from None
            engine.dispose()  # connections made before the search_path hook below

        # search_path (not a translate map), so hand-written SQL in migrations finds the tables too.
        @event.listens_for(engine, "connect", insert=True)
        def _search_path(dbapi_conn: Any, _record: Any) -> None:
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            cur = dbapi_conn.cursor()
            cur.execute(f'SET SESSION search_path TO "{schema}"')
            cur.close()
            dbapi_conn.autocommit = autocommit

    return engine


def _sqlite_engine(url: str, synchronous: str, read_only: bool) -> Engine:
    path = sqlite_path(url)
    if read_only:
        if path is None or not path.exists():
            raise StoreError(f"no positions database at {path}")
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    else:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy decides where transactions begin
        cur = dbapi_conn.cursor()
        if not read_only:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _now() -> datetime:
    return datetime.now(UTC)


def migrate(engine: Engine, schema: str | None = None) -> int:
    """Create or upgrade the schema; returns the version the database is at."""
    with engine.begin() as conn:
        insp = inspect(conn)
        if not insp.has_table(SchemaVersion.__tablename__, schema=schema):
            present = [name for name in Base.metadata.tables if insp.has_table(name, schema=schema)]
            if present:
                raise StoreSchemaError(
                    f"tables {present} exist without a schema_version table: not a v7 positions store "
                    "(point db_url elsewhere or restore the database)")
            Base.metadata.create_all(conn)
            conn.execute(insert(SchemaVersion).values(id=1, version=SCHEMA_VERSION, migrated_at=_now()))
            return SCHEMA_VERSION
        version = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).scalar_one_or_none()
        if version is None:
            raise StoreSchemaError("schema_version table is empty: the database is damaged")
        if version > SCHEMA_VERSION:
            raise StoreSchemaError(
                f"database schema is version {version}, newer than this code (version {SCHEMA_VERSION}); "
                "upgrade v7 before starting the state writer")
    while version < SCHEMA_VERSION:
        step = MIGRATIONS[version + 1]
        with engine.begin() as conn:
            step(conn)
            conn.execute(update(SchemaVersion).where(SchemaVersion.id == 1)
                         .values(version=version + 1, migrated_at=_now()))
        version += 1
    return version


def schema_version(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).scalar_one_or_none()
