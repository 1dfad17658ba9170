"""What the store tests share: backend config, a test sender, views, direct database reads."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from actors.state_writer.store.schema import make_engine
from actors.state_writer.store.tables import Base
from bus.messages import (
    Message,
    StoredPosition,
)
from bus.subscriber import request_snapshot
from tests.harness import Instance
from tests.producers import Producers


@dataclass(frozen=True)
class Backend:
    name: str
    url: str | None = None
    schema: str | None = None

    def toml(self, store: dict[str, Any] | None = None, writer: dict[str, Any] | None = None) -> str:
        lines = [f'db_url = "{self.url}"'] if self.url else []
        store = {**({"db_schema": self.schema} if self.schema else {}), **(store or {})}
        for section, values in (("store", store), ("writer", writer or {})):
            if values:
                lines.append(f"[{section}]")
                lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in values.items()]
        text = "\n".join(lines) + "\n"
        return text.replace("'", '"')


def configure(inst: Instance, backend: Backend, **sections: dict[str, Any]) -> None:
    inst.write_config(backend.toml(**sections))


class Bus(Producers):
    """A test group: sends durable messages, each as its own producer, and waits for every ACK."""

    def __init__(self, inst: Instance, name: str | None = None) -> None:
        super().__init__(inst.settings, prefer=name)

    def send(self, *msgs: Message, timeout: float = 30) -> int:  # type: ignore[override]
        seq = 0
        for msg in msgs:
            seq = self.send_and_wait(msg, timeout=timeout)
        return seq


@contextmanager
def bus(inst: Instance, name: str | None = None) -> Iterator[Bus]:
    b = Bus(inst, name)
    try:
        yield b
    finally:
        b.close()


# --- reading back ------------------------------------------------------------------------------------


def views(inst: Instance, *keys: str) -> dict[str, Any]:
    return request_snapshot(inst.settings, keys=list(keys), timeout_s=10).state


def open_positions(inst: Instance) -> dict[tuple[str, str, str], StoredPosition]:
    rows = [StoredPosition.model_validate(p) for p in views(inst, "open_positions")["open_positions"]]
    return {(p.mode, p.account, p.symbol): p for p in rows}


def engine(inst: Instance) -> Engine:
    s = inst.settings
    return make_engine(s.database_url, schema=s.store.db_schema, read_only=True)


def table(inst: Instance, cls: type[Base], *where: Any) -> list[Any]:
    eng = engine(inst)
    try:
        with Session(eng) as session:
            rows = list(session.scalars(select(cls).where(*where)))
            session.expunge_all()
            return rows
    finally:
        eng.dispose()


def integrity_ok(inst: Instance) -> bool:
    """SQLite: PRAGMA integrity_check. PostgreSQL keeps its own invariants; reading every table is the check."""
    s = inst.settings
    if s.db_url is None:
        path = s.home / "logs" / "positions.db"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    for cls in Base.__subclasses__():
        table(inst, cls)
    return True


def cli_json(inst: Instance, *args: str) -> Any:
    """`v7 ARGS --json` run in this process (the real command, without a Python start-up per
    call: these run often enough in the truth tests to matter), its stdout parsed."""
    from cli.main import main as v7_main

    keep = {k: v for k, v in os.environ.items() if k.startswith("V7_")}
    for name in keep:
        if not name.startswith("V7_TEST"):
            del os.environ[name]
    os.environ["V7_HOME"] = str(inst.home)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = v7_main([*args, "--json"])
    finally:
        for name in [k for k in os.environ if k.startswith("V7_")]:
            del os.environ[name]
        os.environ.update(keep)
    assert code == 0, f"v7 {' '.join(args)} exited {code}"
    return json.loads(out.getvalue())


def same_position(a: StoredPosition, b: StoredPosition) -> bool:
    return a.model_dump() == b.model_dump()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
