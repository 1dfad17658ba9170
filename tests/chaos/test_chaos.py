"""Chaos: the whole group under supervisord, steady load, kill -9 of random actors (the state
writer included), supervisord restarting them. Nothing ACKed is lost and the disk never lies.

Running the whole time, each in a process of its own:
- the group itself (paper exchange, executor, router, exit scanner, sync, diagnostics,
  dashboard and the state writer), trading fast on the paper exchange;
- `tests.chaos.load`: several more senders streaming fills, order intents, positions
  snapshots (durable, pipelined) and heartbeats (telemetry) for accounts of their own;
- `tests.chaos.reader`: reads and validates every state file 50 times a second;
- `tests.chaos.watch`: a bus subscriber recording every snapshot and update it applies.

After the storm the trading programs are stopped, and the record is audited:
- every state-file read parsed and validated (no torn, empty, partial or zeroed file);
- every message a sender saw ACKed is in the journal at the seq its ACK named;
- the journal's seq is gap-free and no message is in it twice;
- the subscriber's updates are gap-free between snapshots, never repeated, and each is the
  message the journal holds at that seq;
- open positions in the store equal the positions the committed (ACKed) fills add up to,
  for the load's accounts and the trading group's alike;
- the SQLite store passes PRAGMA integrity_check, and no temp file is left behind.

The short storm runs in `make test`; `make chaos` runs the long one (at least 100 kills, a
third of them the state writer) and the same storm with the positions store on PostgreSQL
(V7_TEST_PG_URL; skipped with the reason without it). Each prints its counts.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import xmlrpc.client
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from actors.state_writer.store.tables import OpenPositionRow
from bus.messages import OrderFilled
from bus.subscriber import SnapshotError, request_status
from cli.ops import supervisor_proxy
from config.settings import ACTORS
from tests.chaos.audit import (
    ack_violations,
    integrity,
    journal_violations,
    net_of_fills,
    subscriber_violations,
    temp_files,
)
from tests.chaos.procs import helper_processes, spawn
from tests.harness import REPO, Instance, instance
from tests.pg import pg_schema, pg_url
from tests.store.helpers import integrity_ok, open_positions, table
from tests.supervised import supervised_group
from tests.trading.group import Committed, committed, configure_fast

V7_BIN = REPO / ".venv" / "bin" / "v7"
TRADING_SCOPE = ("SIM", "paper")


@dataclass
class Report:
    seconds: float = 0.0
    kills: dict[str, int] = field(default_factory=dict)
    journal_messages: int = 0
    load_sent: int = 0
    load_acked: int = 0
    load_duplicates: int = 0
    telemetry_sent: int = 0
    telemetry_dropped: int = 0
    resent: int = 0
    reads: int = 0
    read_violations: int = 0
    subscriber_updates: int = 0
    subscriber_snapshots: int = 0
    open_positions: int = 0
    violations: list[str] = field(default_factory=list)


def test_chaos_short(tmp_path: Path) -> None:
    report = _storm(tmp_path, seconds=25, senders=3, rate=25, kill_every_s=2.0, seed=11)
    _print(report)
    assert not report.violations, report.violations[:20]


def test_chaos_short_postgresql(tmp_path: Path) -> None:
    """The short storm with the group's store on PostgreSQL (`make test` where a server answers)."""
    url = pg_url()
    with pg_schema(url) as schema:
        report = _storm(tmp_path, seconds=20, senders=3, rate=25, kill_every_s=2.0, seed=13, db=(url, schema))
    _print(report)
    assert report.kills.get("state_writer", 0) >= 1, report.kills
    assert not report.violations, report.violations[:20]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_chaos_long(tmp_path: Path) -> None:
    """`make chaos`: five minutes or more, more senders, a kill every two seconds, until at least
    100 programs (34 of them the state writer) have been killed."""
    report = _storm(tmp_path, seconds=300, senders=5, rate=40, kill_every_s=2.0, seed=29, min_kills=100)
    _print(report)
    assert sum(report.kills.values()) >= 100 and report.kills.get("state_writer", 0) >= 33, report.kills
    assert not report.violations, report.violations[:20]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_chaos_postgresql(tmp_path: Path) -> None:
    """The storm with the positions store on PostgreSQL (a schema of its own, dropped after): the
    store still equals what the committed fills add up to, after every kill of the writer."""
    url = pg_url()
    with pg_schema(url) as schema:
        report = _storm(tmp_path, seconds=120, senders=3, rate=25, kill_every_s=2.5, seed=37, min_kills=30,
                        db=(url, schema))
    _print(report)
    assert report.kills.get("state_writer", 0) >= 10, report.kills
    assert not report.violations, report.violations[:20]


def _print(report: Report) -> None:
    counts = {k: v for k, v in asdict(report).items() if k != "violations"}
    print(f"\nchaos report: {json.dumps(counts)} violations={len(report.violations)}")


# --- the storm -----------------------------------------------------------------------------------------


def _storm(tmp_path: Path, *, seconds: float, senders: int, rate: float, kill_every_s: float,
           seed: int, min_kills: int = 0, db: tuple[str, str] | None = None) -> Report:
    """Kill a program every `kill_every_s` for `seconds` (and on until `min_kills` kills); `db`:
    (PostgreSQL URL, schema) for the positions store instead of SQLite in the instance."""
    if not V7_BIN.exists():
        pytest.skip(f"{V7_BIN} missing: supervisord.conf runs the repository's own .venv (make venv)")
    report = Report()
    rng = random.Random(seed)
    with instance(tmp_path) as inst:
        configure_fast(inst)  # fast paper trading; the journal is never compacted, so it can be audited
        if db is not None:
            # Top-level keys before the sections configure_fast wrote; [store] is not among them.
            inst.write_config(f'db_url = "{db[0]}"\n' + inst.extra_toml + f'\n[store]\ndb_schema = "{db[1]}"\n')
        out = inst.home / "chaos"
        out.mkdir()
        stop_load, stop_watch = out / "stop-load", out / "stop-watch"
        with supervised_group(inst, timeout=120), helper_processes() as started:
            rpc = supervisor_proxy(inst.settings).supervisor
            started.append(spawn(inst, "tests.chaos.reader", "--state-dir", str(inst.state_dir),
                                  "--out", str(out / "reads.json"), "--stop-file", str(stop_watch)))
            started.append(spawn(inst, "tests.chaos.watch", "--out", str(out / "watch.json"),
                                  "--stop-file", str(stop_watch)))
            load = spawn(inst, "tests.chaos.load", "--senders", str(senders), "--rate", str(rate),
                          "--seed", str(seed), "--out", str(out / "load.json"), "--stop-file", str(stop_load))
            started.append(load)

            begun = time.monotonic()
            kills: Counter[str] = Counter()
            others = [a for a in ACTORS if a != "state_writer"]
            deck: list[str] = []
            while time.monotonic() - begun < seconds or kills.total() < min_kills:
                time.sleep(kill_every_s)
                # Every third victim is the state writer; the others come from a shuffled deck
                # of the other programs, so each of them is hit in turn, in a random order.
                if kills.total() % 3 == 2:
                    victim = "state_writer"
                else:
                    deck = deck or rng.sample(others, len(others))
                    victim = deck.pop()
                _kill_and_wait_restart(inst, rpc, victim)
                kills[victim] += 1
            report.seconds = round(time.monotonic() - begun, 1)
            report.kills = dict(sorted(kills.items()))

            # Quiet down: the load flushes (every durable message answered), trading stops.
            stop_load.touch()
            load.wait(timeout=300)
            assert load.returncode == 0, inst.logs("load")[-3000:]
            rpc.stopProcessGroup("v7", True)
            _wait_seq_settles(inst)
            stop_watch.touch()
            for proc in started:
                proc.wait(timeout=60)

            records = committed(inst)
            ledgers = json.loads((out / "load.json").read_text())
            reads = json.loads((out / "reads.json").read_text())
            watch = json.loads((out / "watch.json").read_text())
            report.violations += _audit_journal(records, report)
            report.violations += _audit_load(records, ledgers, report)
            report.violations += _audit_subscriber(records, watch, report)
            report.reads, report.read_violations = reads["reads"], reads["violations"]
            report.violations += [f"bad read: {e}" for e in reads["examples"]]
            if reads["reads"] < seconds * 10:
                report.violations.append(f"the reader only managed {reads['reads']} reads")
            report.violations += _audit_positions(inst, records, ledgers, report)
            if db is None:
                verdict = integrity(inst.home / "logs" / "positions.db")
                if verdict != "ok":
                    report.violations.append(f"integrity_check: {verdict}")
            elif not integrity_ok(inst):  # reads every table of the schema
                report.violations.append("the PostgreSQL store could not be read back")
            if leftovers := temp_files(inst.state_dir):
                report.violations.append(f"temp files left in the state directory: {leftovers}")
            (out / "report.json").write_text(json.dumps(asdict(report), indent=1))
    return report


def _info(rpc: Any, name: str) -> dict[str, Any]:
    group = "hub" if name == "state_writer" else "v7"
    return rpc.getProcessInfo(f"{group}:{name}")


def _kill_and_wait_restart(inst: Instance, rpc: Any, name: str) -> None:
    """kill -9 the program's process, then wait until supervisord has it RUNNING again."""
    before = _info(rpc, name)
    assert before["statename"] == "RUNNING", before
    os.kill(before["pid"], signal.SIGKILL)

    def back() -> bool:
        try:
            now = _info(rpc, name)
        except (OSError, xmlrpc.client.Error):
            return False
        return now["statename"] == "RUNNING" and now["pid"] != before["pid"]

    inst.wait_for(back, 90, f"supervisord to restart {name}", interval=0.2)
    if name == "state_writer":
        inst.wait_hub(timeout=60)


def _wait_seq_settles(inst: Instance) -> None:
    """Until the hub's seq stops moving (everything in flight is committed)."""
    last, still_since = -1, time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            seq = request_status(inst.settings, timeout_s=3)["seq"]
        except SnapshotError:
            seq = -1
        if seq != last:
            last, still_since = seq, time.monotonic()
        elif time.monotonic() - still_since > 2.0:
            return
        time.sleep(0.2)
    raise AssertionError("the hub's seq never settled after the trading programs stopped")


# --- the audits ----------------------------------------------------------------------------------------


def _audit_journal(records: list[Committed], report: Report) -> list[str]:
    report.journal_messages = len(records)
    return journal_violations(records)


def _audit_load(records: list[Committed], ledgers: list[dict[str, Any]], report: Report) -> list[str]:
    for ledger in ledgers:
        report.load_sent += ledger["sent"]
        report.load_acked += len(ledger["acked"])
        report.load_duplicates += sum(1 for _, _, seq in ledger["acked"] if seq == 0)
        report.telemetry_sent += ledger["telemetry_sent"]
        report.telemetry_dropped += ledger["telemetry_dropped"]
        report.resent += ledger["resent"]
    return ack_violations(records, ledgers)


def _audit_subscriber(records: list[Committed], watch: dict[str, Any], report: Report) -> list[str]:
    bad, report.subscriber_updates, report.subscriber_snapshots = subscriber_violations(records, watch)
    return bad


def _audit_positions(inst: Instance, records: list[Committed], ledgers: list[dict[str, Any]],
                     report: Report) -> list[str]:
    bad = []
    fills = [r.msg for r in records if isinstance(r.msg, OrderFilled)]
    expected = net_of_fills(fills)
    stored = {k: (p.side, p.qty) for k, p in open_positions(inst).items()}
    report.open_positions = len(stored)
    # The view is served from the store; its table read directly must say the same.
    rows = {(r.mode, r.account, r.symbol): (r.side, r.qty) for r in table(inst, OpenPositionRow)}
    if rows != stored:
        bad.append(f"open_position table {sorted(set(rows.items()) ^ set(stored.items()))[:5]} differs from the view")
    for key in sorted(set(expected) | set(stored)):
        want, have = expected.get(key), stored.get(key)
        if want is None or have is None or want[0] != have[0] or abs(want[1] - have[1]) > 1e-6 * max(want[1], 1):
            bad.append(f"position {key}: the committed fills add up to {want}, the store has {have}")
    # The load's own account of its ACKed fills says the same for its accounts.
    for ledger in ledgers:
        mine = [OrderFilled(trade_id=f["trade_id"], order_id="x", intent_id="x", mode="SIM", account=ledger["account"],
                     symbol=f["symbol"], side=f["side"], qty=f["qty"], price=f["price"], liquidity="taker")
                for f in ledger["fills"]]
        for key, want in net_of_fills(mine).items():
            if stored.get(key, (None, 0.0))[0] != want[0] or abs(stored[key][1] - want[1]) > 1e-6 * max(want[1], 1):
                bad.append(f"{ledger['source']}: its ACKed fills add up to {want} in {key}, the store has "
                           f"{stored.get(key)}")
        flat = {k for k in stored if k[1] == ledger["account"]} - set(net_of_fills(mine))
        bad += [f"{ledger['source']}: store has {k} open, its ACKed fills net to flat" for k in flat]
    if not any(k[:2] == TRADING_SCOPE for k in {(f.mode, f.account) for f in fills}):
        bad.append("the trading group made no fills during the storm")
    return bad
