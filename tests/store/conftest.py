"""Store tests run once per backend: SQLite always, PostgreSQL when V7_TEST_PG_URL answers.

Each PostgreSQL test gets its own schema (dropped afterwards), so concurrent runs against
one server never see each other's tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Instance, instance
from tests.pg import pg_schema, pg_url
from tests.store.helpers import Backend


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    url = pg_url()
    with pg_schema(url) as schema:
        yield Backend("postgresql", url=url, schema=schema)


@pytest.fixture
def store_v7(tmp_path: Path, backend: Backend) -> Iterator[Instance]:
    """An isolated instance configured for `backend` (writer not started)."""
    with instance(tmp_path, backend.toml()) as inst:
        yield inst
