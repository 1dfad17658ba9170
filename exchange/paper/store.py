"""The paper exchange's own persistence: one SQLite file under the instance's var directory.

What a real exchange would remember across our process restarts: the account, positions,
orders (with their fills), the fill history, id counters and the market state. Every engine
mutation commits in one transaction (WAL, synchronous=FULL), so a kill -9 loses at most the
market steps since the last saved bar, which the seeded simulator replays identically.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from exchange.adapter import ExchangeFill, Order

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_ts REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_symbol ON orders(symbol, client_order_id);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY,
    trade_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    ts REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_ts ON fills(ts);
"""


class StoreError(Exception):
    """The paper exchange database is unusable (in use by another process, wrong schema
    version). Start-up stops; nothing was changed."""


class PaperStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One exchange process per database: a second one would bind the same ipc path
        # (silently stealing it) and fork the account. The kernel drops the lock on any exit.
        self._lock_fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StoreError(f"{path} is in use by another paper exchange process") from None
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        version = self.get("schema_version")
        if version is None:
            self.put("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise StoreError(f"{path}: schema version {version}, this build reads {SCHEMA_VERSION}")
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nested use joins the outer transaction; the outermost commits or rolls back."""
        if self._depth == 0:
            self._db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self._db.execute("COMMIT")

    def get(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def save_order(self, order: Order) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO orders (client_order_id, symbol, status, updated_ts, body) VALUES (?, ?, ?, ?, ?)",
            (order.client_order_id, order.symbol, order.status, order.updated_at.timestamp(),
             order.model_dump_json()),
        )

    def orders(self) -> list[Order]:
        rows = self._db.execute("SELECT body FROM orders ORDER BY rowid").fetchall()
        return [Order.model_validate_json(r[0]) for r in rows]

    def prune_orders(self, before_ts: float) -> int:
        cur = self._db.execute(
            "DELETE FROM orders WHERE updated_ts < ? AND status NOT IN ('NEW', 'PARTIALLY_FILLED')", (before_ts,))
        return cur.rowcount

    def save_fill(self, seq: int, fill: ExchangeFill) -> None:
        self._db.execute(
            "INSERT INTO fills (seq, trade_id, symbol, ts, body) VALUES (?, ?, ?, ?, ?)",
            (seq, fill.trade_id, fill.symbol, fill.ts.timestamp(), fill.model_dump_json()),
        )

    def fills(self, since: datetime | None, symbol: str | None, limit: int) -> list[ExchangeFill]:
        query = "SELECT body FROM fills WHERE ts >= ?"
        params: list[Any] = [since.timestamp() if since else 0.0]
        if symbol:
            query += " AND symbol = ?"
            params.append(symbol)
        query += " ORDER BY seq LIMIT ?"
        params.append(limit)
        return [ExchangeFill.model_validate_json(r[0]) for r in self._db.execute(query, params).fetchall()]

    def close(self) -> None:
        self._db.close()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
