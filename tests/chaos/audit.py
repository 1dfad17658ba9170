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


def journal_violations(records: list[Committed]) -> list[str]:
    """The journal's seq is gap-free from 1, and no (src, incarnation, sseq) is in it twice."""
    bad = []
    seqs = [r.seq for r in records]
    if seqs != list(range(1, len(records) + 1)):
        missing = sorted(set(range(1, (max(seqs) if seqs else 0) + 1)) - set(seqs))
        bad.append(f"journal seq not gap-free: {len(missing)} missing, e.g. {missing[:5]}")
    seen: dict[tuple[str, int, int], int] = {}
    for r in records:
        ident = (r.env.src, r.env.inc, r.env.sseq)
        if ident in seen:
            bad.append(f"{ident} committed twice: seq {seen[ident]} and {r.seq}")
        seen[ident] = r.seq
    return bad


def subscriber_violations(records: list[Committed], watch: dict[str, Any]) -> tuple[list[str], int, int]:
    """A recording subscriber's history (tests.chaos.watch) against the journal: updates gap-free
    between snapshots, never repeated, each the journal's message at that seq, snapshots never
    going back, and ending at the journal's last seq. Returns (violations, updates, snapshots)."""
    bad = []
    by_seq = {r.seq: r for r in records}
    last = None
    applied: set[int] = set()
    snapshots = 0
    for event in watch["history"]:
        if event[0] == "S":
            seq = event[1]
            if last is not None and seq < last:
                bad.append(f"subscriber snapshot went back: {seq} after {last}")
            last = seq
            snapshots += 1
            continue
        _, seq, src, inc, sseq = event
        if seq in applied:
            bad.append(f"subscriber got seq {seq} twice")
        applied.add(seq)
        if last is None or seq != last + 1:
            bad.append(f"subscriber applied seq {seq} after {last} (gap)")
        last = seq
        record = by_seq.get(seq)
        if record is None or (record.env.src, record.env.inc, record.env.sseq) != (src, inc, sseq):
            bad.append(f"subscriber's seq {seq} is {(src, inc, sseq)}, the journal's is "
                       f"{None if record is None else (record.env.src, record.env.inc, record.env.sseq)}")
    if records and (last or 0) < records[-1].seq:
        bad.append(f"subscriber ended at seq {last}, the journal at {records[-1].seq}")
    return bad, len(applied), snapshots


def net_of_fills(fills: list[OrderFilled]) -> dict[tuple[str, str, str], tuple[str, float]]:
    """(mode, account, symbol) -> (side, qty): the store's position rules (flip, reduce-only) on qty alone."""
    book: dict[tuple[str, str, str], float] = {}
    seen: set[str] = set()
    for f in fills:
        if f.trade_id in seen:
            continue
        seen.add(f.trade_id)
        key = (f.mode, f.account, f.symbol)
        net = book.get(key, 0.0)
        signed = f.qty if f.side == "BUY" else -f.qty
        if f.reduce_only and (abs(net) < 1e-12 or (net > 0) == (signed > 0)):
            continue  # an anomaly: nothing applied
        total = net + signed
        if f.reduce_only and abs(net) > 1e-12 and (total > 0) != (net > 0):
            total = 0.0  # a reduce-only fill closes, never flips
        book[key] = total
    return {k: ("LONG" if n > 0 else "SHORT", abs(n)) for k, n in book.items() if abs(n) > 1e-9}
