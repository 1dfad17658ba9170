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
from bus.messages import Message, OrderFilled, PositionsState, SubmitOrder
from tests.trading.group import Committed


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


def message_key(msg: Message) -> str | None:
    """What a load sender calls a durable message in its ACK ledger (tests.chaos.load)."""
    if isinstance(msg, OrderFilled):
        return msg.trade_id
    if isinstance(msg, SubmitOrder):
        return msg.intent_id
    if isinstance(msg, PositionsState):
        return msg.updated_at.isoformat()
    return None


def ack_violations(records: list[Committed], ledgers: list[dict[str, Any]]) -> list[str]:
    """Every ACK a load sender saw names the journal record holding that very message; none NACKed or unanswered."""
    bad = []
    by_seq = {r.seq: r for r in records}
    keys = {(r.msg.TYPE, message_key(r.msg), r.env.src) for r in records}
    for ledger in ledgers:
        name = ledger["source"]
        bad += [f"{name}: NACK {n}" for n in ledger["nacked"]]
        bad += [f"{name}: never answered {u}" for u in ledger["unanswered"]]
        for kind, key, seq in ledger["acked"]:
            src = "router" if kind == OrderFilled.TYPE else "executor"  # the load speaks as each type's producer
            if seq == 0:  # "duplicate": an earlier attempt was committed; its seq is not named
                if (kind, key, src) not in keys:
                    bad.append(f"{name}: {kind} {key} answered duplicate but is not in the journal")
                continue
            record = by_seq.get(seq)
            found = None if record is None else (record.msg.TYPE, message_key(record.msg), record.env.src)
            if found != (kind, key, src):
                bad.append(f"{name}: {kind} {key} ACKed as seq {seq}, the journal has {found} there")
    return bad
