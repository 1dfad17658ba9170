"""Store tests run once per backend: SQLite always, PostgreSQL when V7_TEST_PG_URL answers.

Each PostgreSQL test gets its own schema (dropped afterwards), so concurrent runs against
one server never see each other's tables.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from tests.harness import Instance, instance
from tests.store.helpers import Backend


@functools.cache
def _pg_problem(url: str) -> str:
    """Why the server at `url` cannot be used ("" if it can); asked once per run."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except (SQLAlchemyError, ImportError) as exc:
        return f"PostgreSQL at V7_TEST_PG_URL not reachable: {str(exc).splitlines()[0]}"
    return ""


def _pg_url() -> str:
    url = os.environ.get("V7_TEST_PG_URL")
    if not url:
        pytest.skip("PostgreSQL: V7_TEST_PG_URL is not set (.ci/run sets it when a server answers on "
                    "127.0.0.1:5432)")
    problem = _pg_problem(url)
    if problem:
        pytest.skip(problem)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    url = _pg_url()
    schema = f"v7t_{uuid.uuid4().hex[:16]}"
    yield Backend("postgresql", url=url, schema=schema)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def store_v7(tmp_path: Path, backend: Backend) -> Iterator[Instance]:
    """An isolated instance configured for `backend` (writer not started)."""
    with instance(tmp_path, backend.toml()) as inst:
        yield inst
