"""Performance at scale: recovery time against journal length, writer RSS over many messages,
and end-to-end latency of a fill. `python -m bench.scale [--long]` (`make bench` runs the
default sizes; `make bench-long` = `--long` adds the 1M-message runs).

1. Journals of 10k / 100k (/ 1M) messages are made by the real commit path in process: a
   `StateWriter` (positions store hook included) judges, journals with fsync, applies and
   snapshots batches of frames exactly as its server loop does, without the sockets (feeding
   1M messages through ZeroMQ would take minutes here). The run then stops as a kill -9 would
   (no shutdown snapshot) one message short of the next snapshot, the worst case for the
   snapshot cadence. Recovery is timed by starting the real `v7 run state_writer` on it
   (its `v7_writer_recovery_seconds`), with snapshots and, for contrast, without.
2. Writer RSS: sampled while making the journal (in process) and, through the real bus, in
   a `v7 run state_writer` process fed by three `Sender` processes.
3. End to end: a fill sent with `Sender.submit` (as the router does) until the hub's ACK, until
   its row is visible in the database to another reader, and a positions snapshot sent with
   it until positions_state.json shows it; at a realistic rate and at 10x.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from actors.state_writer.ingest import Inbound, judge
from actors.state_writer.main import build_hooks
from actors.state_writer.server import StateWriter
from bench.state_plane import machine
from bench.state_plane.payload import positions
from bench.state_plane.writer import RunningWriter
from bus import codec
from bus.messages import Heartbeat, Message, OrderFilled
from config.settings import Settings, load_settings

V7 = str(Path(sys.executable).parent / "v7")
BATCH = 2048  # the writer's default batch_max
SNAPSHOT_EVERY = load_settings({"V7_HOME": tempfile.gettempdir()}).writer.snapshot_every_messages  # as shipped
SYMBOLS = [f"SYM{i}USDT" for i in range(10)]


def rss_mib(pid: int | None = None) -> float:
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _message(i: int) -> Message:
    """A realistic mix: mostly positions snapshots, a heartbeat and a fill every few messages."""
    if i % 10 == 3:
        return Heartbeat(actor="executor", pid=1, started_at=datetime(2025, 1, 1, tzinfo=UTC), interval_s=1.0)
    if i % 10 == 7:
        n = i // 10
        symbol = SYMBOLS[n % len(SYMBOLS)]
        side = "BUY" if (n // len(SYMBOLS)) % 2 == 0 else "SELL"  # open, then close, per symbol
        return OrderFilled(trade_id=f"t{i}", order_id=f"o{i}", intent_id=f"i{i}", mode="SIM", account="paper",
                           symbol=symbol, side=side, qty=1.0, price=100.0 + n % 7, fee=0.01, liquidity="taker")
    return positions(i)


def _home(root: Path, snapshots: bool) -> Settings:
    home = root / ("snap" if snapshots else "nosnap")
    home.mkdir(parents=True)
    every = SNAPSHOT_EVERY if snapshots else 10**12
    port = 20000 + (os.getpid() * 7 + (1 if snapshots else 2) * 97) % 20000
    (home / "runtime.toml").write_text(
        f"port_base = {port}\n[dashboard]\nport = {port + 9}\n"
        f"[writer]\nsnapshot_every_messages = {every}\nsnapshot_every_s = 1e9\n")
    return load_settings({"V7_HOME": str(home)})


def make_journal(settings: Settings, total: int, rss: list[tuple[int, float]] | None = None) -> float:
    """Commit `total` messages through the writer's own commit path; returns messages per second."""
    writer = StateWriter(settings, build_hooks(settings))
    writer.start(serve_metrics=False)
    stop_at = total
    sseqs: Counter[str] = Counter()
    started = time.perf_counter()
    done = 0
    try:
        while done < stop_at:
            n = min(BATCH, stop_at - done)
            inbound = []
            for k in range(n):
                msg = _message(done + k)
                src = "router" if isinstance(msg, OrderFilled) else "executor"  # each type from its own producer
                sseqs[src] += 1
                inbound.append(Inbound([b"id", codec.encode_envelope(src, 1, sseqs[src], msg, ts=1.0)]))
            batch = judge(inbound, writer.state, settings.bus.max_frame_bytes, authority=writer.authority)
            assert len(batch.accepted) == n, batch.nacks
            assert writer.commit(batch)
            done += n
            # The writer snapshots from its tick once this many messages are past the last one.
            if writer.state.seq - writer._snapshot_seq >= settings.writer.snapshot_every_messages:
                writer.snapshot()
            if rss is not None and (done % 100_000 < BATCH or done == stop_at):
                rss.append((done, rss_mib()))
        rate = done / (time.perf_counter() - started)
    finally:
        # A crash, not a clean stop: no final snapshot; what is fsynced stays.
        writer.journal.close()
        for hook in writer.hooks:
            hook.close()
        writer._close_sockets()
        writer.lock.release()
    return rate


def _total_for(size: int) -> int:
    """`size` messages and then one short of the next snapshot (the longest tail the cadence allows)."""
    return size + SNAPSHOT_EVERY - 1 if size >= SNAPSHOT_EVERY else size


def time_recovery(settings: Settings) -> tuple[float, float, int]:
    """(recovery seconds by the writer's own gauge, wall seconds to serving, records replayed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("V7_")}
    env["V7_HOME"] = str(settings.home)
    log = (settings.home / "writer.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen([V7, "run", "state_writer"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        from bus.subscriber import SnapshotError, request_status

        deadline = time.monotonic() + 600
        while True:
            try:
                request_status(settings, timeout_s=1.0)
                break
            except SnapshotError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((settings.home / "writer.log").read_text()[-2000:]) from None
        wall = time.monotonic() - started
        w = RunningWriter.__new__(RunningWriter)
        w.settings = settings
        return w.metric("v7_writer_recovery_seconds"), wall, int(w.metric("v7_writer_replayed_messages"))
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def recovery(sizes: list[int], table: list[str]) -> None:
    for size in sizes:
        for snapshots in (True, False):
            with tempfile.TemporaryDirectory(prefix="v7scale-", dir=os.environ.get("V7_BENCH_DIR")) as root:
                settings = _home(Path(root), snapshots)
                total = _total_for(size) if snapshots else size
                print(f"  journal of {total:,} messages ({'with' if snapshots else 'without'} snapshots) ...",
                      flush=True)
                rate = make_journal(settings, total)
                journal_mb = sum(p.stat().st_size for p in settings.journal_path.iterdir()) / 2**20
                rec, wall, replayed = time_recovery(settings)
                label = f"recovery, {size:,} journaled messages, {'with' if snapshots else 'no'} snapshots"
                detail = (f"**{rec:.2f} s** (replayed {replayed:,}; process start to serving {wall:.2f} s; "
                          f"journal dir {journal_mb:.0f} MiB; made at {rate:,.0f} msg/s)")
                table.append(f"| {label} | {detail} |")
                print(f"  {label}: {detail}", flush=True)


def rss_in_process(total: int, table: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="v7scale-", dir=os.environ.get("V7_BENCH_DIR")) as root:
        settings = _home(Path(root), True)
        samples: list[tuple[int, float]] = []
        make_journal(settings, total, samples)
    at = dict(samples)
    base = next((v for n, v in samples if n >= 100_000), samples[0][1])
    line = ", ".join(f"{n // 1000}k: {v:.0f}" for n, v in samples if n % 200_000 < BATCH or n == total)
    growth = (samples[-1][1] - base) / base
    table.append(f"| writer RSS over {total:,} messages, commit path in process (MiB) | {line}; "
                 f"growth from 100k to {total // 1000}k **{growth:+.1%}** |")
    print(f"  RSS in process: {line} growth {growth:+.1%} ({len(at)} samples)", flush=True)


def _feed(home: str, name: str, count: int, out: mp.Queue) -> None:
    from bus.sender import Sender

    settings = load_settings({"V7_HOME": home})
    sender = Sender(settings, name, outbox_max=5000)
    for i in range(count):
        sender.send(positions(i) if i % 10 else Heartbeat(actor=name, pid=os.getpid(), started_at=datetime(
            2025, 1, 1, tzinfo=UTC), interval_s=1.0))  # `name` is a program: heartbeats speak for their sender
    ok = sender.flush(600)
    out.put((name, ok, sender.stats.acked))
    sender.close()


def rss_through_bus(total: int, table: list[str]) -> None:
    """A real writer process fed over ZeroMQ by three senders; its RSS from /proc."""
    spawn = mp.get_context("spawn")
    with RunningWriter() as w:
        pid = w.proc.pid
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((w.metric("v7_writer_seq"), rss_mib(pid)))
                stop.wait(1.0)

        thread = threading.Thread(target=sample, daemon=True)
        out = spawn.Queue()
        procs = [spawn.Process(target=_feed, args=(w.home, "executor", total // 3, out)) for _n in range(3)]
        started = time.monotonic()
        thread.start()
        for p in procs:
            p.start()
        results = [out.get(timeout=1800) for _ in procs]
        elapsed = time.monotonic() - started
        for p in procs:
            p.join(30)
        stop.set()
        thread.join(5)
        samples.append((w.metric("v7_writer_seq"), rss_mib(pid)))
    assert all(ok for _n, ok, _a in results), results
    base = next((r for s, r in samples if s >= 100_000), samples[0][1])
    peak = max(r for _s, r in samples)
    table.append(f"| writer RSS, {total:,} messages through the bus (3 senders, {total / elapsed:,.0f} msg/s) | "
                 f"at 100k {base:.0f} MiB, at end {samples[-1][1]:.0f} MiB, peak {peak:.0f} MiB: "
                 f"**{(samples[-1][1] - base) / base:+.1%}** |")
    print(f"  RSS through the bus: base {base:.0f} end {samples[-1][1]:.0f} peak {peak:.0f}", flush=True)


def _watch_db(path: Path, want: int, seen: dict[int, float], stop: threading.Event) -> None:
    """Another reader of the database: when does each fill's row become visible?"""
    while not path.exists() and not stop.is_set():
        time.sleep(0.01)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    while len(seen) < want and not stop.is_set():
        try:
            rows = db.execute("select trade_id from fill_record where trade_id like 'e2e-%'").fetchall()
        except sqlite3.OperationalError:
            rows = []
        now = time.perf_counter()
        for (trade_id,) in rows:
            seen.setdefault(int(trade_id.split("-")[1]), now)
        time.sleep(0.001)
    db.close()


def _watch_file(directory: Path, want: int, seen: dict[int, float], stop: threading.Event) -> None:
    """A reader polling positions_state.json (through the read-only loader): when does the
    snapshot sent with fill i show up?"""
    from bus.state_reader import load_positions_state

    last = -1
    while len(seen) < want and not stop.is_set():
        try:
            mark = int(load_positions_state(directory)["positions"][0]["realized_pnl"])
        except (OSError, ValueError, KeyError, IndexError):
            time.sleep(0.001)
            continue
        now = time.perf_counter()
        if mark != last:
            for i in range(last + 1, mark + 1):
                seen.setdefault(i, now)
            last = mark
        time.sleep(0.001)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def end_to_end(rate: float, seconds: float, table: list[str]) -> None:
    from bus.sender import Sender

    with RunningWriter() as w:
        settings = w.settings
        count = int(rate * seconds)
        acked: dict[int, float] = {}
        in_db: dict[int, float] = {}
        in_file: dict[int, float] = {}
        stop = threading.Event()
        watchers = [threading.Thread(target=_watch_db, args=(Path(settings.database_url.removeprefix("sqlite:///")),
                                                            count, in_db, stop), daemon=True),
                    threading.Thread(target=_watch_file, args=(Path(w.home, "logs", "state"), count, in_file, stop),
                                     daemon=True)]
        for t in watchers:
            t.start()
        sender = Sender(settings, "router")
        sender.send_and_wait(positions(0), timeout=30)
        sent: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(count):
            due = start + i / rate
            while (now := time.perf_counter()) < due:
                time.sleep(min(0.001, due - now))
            n = i // 2
            fill = OrderFilled(trade_id=f"e2e-{i}", order_id=f"o{i}", intent_id=f"i{i}", mode="SIM", account="paper",
                               symbol=SYMBOLS[n % len(SYMBOLS)], side="BUY" if (n // len(SYMBOLS)) % 2 == 0 else "SELL",
                               qty=1.0, price=100.0, fee=0.01, liquidity="taker")
            sent[i] = time.perf_counter()
            sender.submit(fill).add_done_callback(lambda _f, i=i: acked.setdefault(i, time.perf_counter()))
            sender.submit(positions(i))  # the executor's view right after: realized_pnl carries i
        sender.flush(120)
        deadline = time.monotonic() + 10
        while (len(in_db) < count or len(in_file) < count) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in watchers:
            t.join(5)
        sender.close()
    ack = [acked[i] - sent[i] for i in sent if i in acked]
    db = [in_db[i] - sent[i] for i in sent if i in in_db]
    file = [in_file[i] - sent[i] for i in sent if i in in_file]
    for what, values in (("ACK", ack), ("DB row visible", db), ("positions_state.json shows it", file)):
        line = (f"p50 {_pct(values, 0.5):.1f} ms, **p99 {_pct(values, 0.99):.1f} ms** "
                f"({len(values)} of {count})")
        table.append(f"| fill -> {what}, {rate:g} fills/s | {line} |")
        print(f"  fill -> {what} at {rate:g}/s: {line}", flush=True)


def run(long: bool) -> str:
    table = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in machine.describe().items()),
             f"| run | {time.strftime('%Y-%m-%d %H:%M:%S %Z')}{' (--long)' if long else ''} |",
             "", "| measurement | result |", "|---|---|"]
    sizes = [10_000, 100_000, 1_000_000] if long else [10_000, 100_000]
    print("recovery time against journal length ...", flush=True)
    recovery(sizes, table)
    print("writer RSS ...", flush=True)
    rss_in_process(1_000_000 if long else 300_000, table)
    rss_through_bus(1_000_000 if long else 200_000, table)
    print("end-to-end fill latency ...", flush=True)
    for rate in (20.0, 200.0):
        end_to_end(rate, 15.0, table)
    load = os.getloadavg()[0]
    return "\n".join([*table, f"| load average (1 min) at the end | {load:.2f} |"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--long", action="store_true", help="add the 1M-message journal and RSS runs")
    args = parser.parse_args(argv or [])
    long = args.long or os.environ.get("V7_BENCH_LONG") == "1"
    text = run(long)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
