"""PostgreSQL for tests: the server named by V7_TEST_PG_URL, one schema of its own per test.

Tests skip, with the reason, when the variable is unset or the server does not answer; each
gets a fresh schema (dropped afterwards), so concurrent runs against one server never see
each other's tables.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError


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


def pg_url() -> str:
    """V7_TEST_PG_URL, or skip the test saying why it cannot be used."""
    url = os.environ.get("V7_TEST_PG_URL")
    if not url:
        pytest.skip("PostgreSQL: V7_TEST_PG_URL is not set (.ci/run sets it when a server answers on "
                    "127.0.0.1:5432)")
    problem = _pg_problem(url)
    if problem:
        pytest.skip(problem)
    return url


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A schema name no other test uses; the schema (created by the store on start) is dropped after."""
    schema = f"v7t_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            engine.dispose()
