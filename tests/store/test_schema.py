"""Schema creation, the version table, migrations, and one writer per database (real SQLite / PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text, update

from actors.state_writer.store import SCHEMA_VERSION, PositionStore, StoreSchemaError, schema
from actors.state_writer.store.lock import StoreLocked
from actors.state_writer.store.tables import SchemaVersion
from config.settings import Settings
from tests.store.helpers import Backend


def _settings(tmp_path: Path, backend: Backend) -> Settings:
    data: dict = {"home": tmp_path}
    if backend.url:
        data["db_url"] = backend.url
        data["store"] = {"db_schema": backend.schema}
    return Settings.model_validate(data)


def _engine(s: Settings):  # type: ignore[no-untyped-def]
    return schema.make_engine(s.database_url, schema=s.store.db_schema)


def test_fresh_database_is_created_and_stamped(tmp_path: Path, backend: Backend) -> None:
    s = _settings(tmp_path, backend)
    store = PositionStore(s)
    store.open()
    try:
        assert store.schema_version == SCHEMA_VERSION
        names = set(inspect(store.engine).get_table_names(schema=s.store.db_schema))
        assert {"open_position", "trade_record", "position_event", "schema_version", "store_meta"} <= names
        if backend.name == "sqlite":
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL (the journal replays the rest)
        with pytest.raises(StoreLocked):
            PositionStore(s).open()  # a second writer on the same database is refused
    finally:
        store.close()
    again = PositionStore(s)
    again.open()  # the lock went with the first store
    again.close()


def test_newer_schema_is_refused(tmp_path: Path, backend: Backend) -> None:
    s = _settings(tmp_path, backend)
    engine = _engine(s)
    schema.migrate(engine, s.store.db_schema)
    with engine.begin() as conn:
        conn.execute(update(SchemaVersion).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreSchemaError, match="newer than this code"):
        schema.migrate(engine, s.store.db_schema)
    engine.dispose()


def test_foreign_tables_are_refused(tmp_path: Path, backend: Backend) -> None:
    s = _settings(tmp_path, backend)
    engine = _engine(s)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE open_position (id INTEGER)"))
    with pytest.raises(StoreSchemaError, match="not a v7 positions store"):
        schema.migrate(engine, s.store.db_schema)
    engine.dispose()


def test_migrations_run_in_order_each_in_its_own_transaction(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _settings(tmp_path, backend)
    engine = _engine(s)
    assert schema.migrate(engine, s.store.db_schema) == SCHEMA_VERSION

    def add_note(conn: Connection) -> None:
        conn.execute(text("ALTER TABLE trade_record ADD COLUMN note VARCHAR(64)"))

    def fail(conn: Connection) -> None:
        conn.execute(text("ALTER TABLE trade_record ADD COLUMN other VARCHAR(8)"))
        raise RuntimeError("step 3 broke")

    monkeypatch.setattr(schema, "MIGRATIONS", {SCHEMA_VERSION + 1: add_note, SCHEMA_VERSION + 2: fail})
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    with pytest.raises(RuntimeError, match="step 3 broke"):
        schema.migrate(engine, s.store.db_schema)
    assert schema.schema_version(engine) == SCHEMA_VERSION + 1, "the good step stays, the failed one rolls back"
    columns = {c["name"] for c in inspect(engine).get_columns("trade_record", schema=s.store.db_schema)}
    assert "note" in columns and "other" not in columns
    engine.dispose()


def test_bad_database_settings_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(schema.StoreError, match="db_url"):
        schema.make_engine("notaurl")
    with pytest.raises(schema.StoreError, match=r"store\.db_schema"):
        schema.make_engine(f"sqlite:///{tmp_path}/x.db", schema="s1")
