"""Reading back what the writer made durable: the journal, the state files, the positions database.

The journal is read raw (msgpack, no models) and read-only, so it can be audited while the
writer appends to it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from actors.state_writer.journal import Journal


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    src: str
    inc: int
    sseq: int
    msg: dict[str, Any]


def journal(journal_dir: Path) -> list[Record]:
    out = []
    for r in Journal(journal_dir).records():
        env = msgpack.unpackb(r.payload, raw=False, strict_map_key=False)
        out.append(Record(r.seq, env["src"], env["inc"], env["sseq"], env["msg"]))
    return out


def integrity(db: Path) -> str:
    """SQLite's own verdict on the database file ("ok" when sound); read-only, safe while it is written."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def db_rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def temp_files(state_dir: Path) -> list[str]:
    """Leftover temp files of atomic writes (a partial file would be one of these)."""
    return sorted(p.name for p in state_dir.glob(".*.tmp.*"))
