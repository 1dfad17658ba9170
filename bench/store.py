"""Positions store: what write-through costs the state writer.

1. In process (the hook alone, real database): one fill per batch (the worst case: one
   transaction each), a marks batch for 10 open positions, a batch the store ignores, and
   what the writer then pays to find and render the views those batches changed.
2. End to end (a real `v7 run state_writer`): ACK latency of sequential fills
   (journal fsync + store commit), and pipelined fill throughput.

SQLite always; PostgreSQL too when V7_TEST_PG_URL is set. Run: `python -m bench store`.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from actors.state_writer.hooks import Committed
from actors.state_writer.store import PositionStore
from bus.messages import Heartbeat, OrderFilled, PositionRow, PositionsState, Scope, SubmitOrder
from bus.sender import Sender
from config.settings import Settings

SYMBOLS = [f"SYM{i}USDT" for i in range(10)]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _fill(n: int, symbol: str, side: str, price: float) -> OrderFilled:
    return OrderFilled(trade_id=f"t{n}", order_id=f"o{n}", intent_id=f"i{n}", mode="SIM", account="paper",
                       symbol=symbol, side=side, qty=1.0, price=price, fee=0.01, liquidity="taker")


def _report(label: str, samples: list[float]) -> None:
    print(f"  {label:<44} p50 {_pct(samples, 0.5) * 1e3:8.3f} ms  p99 {_pct(samples, 0.99) * 1e3:8.3f} ms  "
          f"({len(samples)} samples)")


def in_process(settings: Settings, label: str, fills: int = 2000, mark_batches: int = 2000) -> None:
    store = PositionStore(settings)
    store.open()
    store.changed_views()  # the baseline, as the writer takes it at start-up
    seq = 0
    views_t: dict[str, list[float]] = {"fill": [], "marks": [], "heartbeat": []}

    def views_after(kind: str) -> None:
        started = time.perf_counter()
        store.changed_views()
        views_t[kind].append(time.perf_counter() - started)

    try:
        fill_t = []
        for n in range(fills):
            seq += 1
            symbol = SYMBOLS[n % len(SYMBOLS)]
            side = "BUY" if (n // len(SYMBOLS)) % 2 == 0 else "SELL"  # open, then close, alternately
            started = time.perf_counter()
            store.apply([Committed(seq, "bench", 1, seq, _fill(n, symbol, side, 100.0 + n % 7))])
            fill_t.append(time.perf_counter() - started)
            views_after("fill")
        for n, symbol in enumerate(SYMBOLS):  # leave 10 positions open for the marks
            seq += 1
            store.apply([Committed(seq, "bench", 1, seq, _fill(10**6 + n, symbol, "BUY", 100.0))])
        mark_t = []
        for n in range(mark_batches):
            seq += 1
            price = 100.0 + (n % 200) * 0.01 * (1 if n % 2 else -1)
            rows = [PositionRow(symbol=s, side="LONG", qty=1.0, entry_price=100.0, mark_price=price,
                                notional=price, unrealized_pnl=price - 100.0) for s in SYMBOLS]
            started = time.perf_counter()
            marks = PositionsState(scope=Scope(mode="SIM", network="paper", account="paper"), positions=rows)
            store.apply([Committed(seq, "executor", 1, seq, marks)])
            mark_t.append(time.perf_counter() - started)
            views_after("marks")
        hb_t = []
        hb = Heartbeat(actor="bench", pid=1, started_at=datetime.now(UTC), interval_s=1.0)
        for _ in range(2000):
            seq += 1
            started = time.perf_counter()
            store.apply([Committed(seq, "bench", 1, seq, hb)])
            hb_t.append(time.perf_counter() - started)
            views_after("heartbeat")
    finally:
        store.close()
    print(f" [{label}] hook alone")
    _report("fill (1 per batch = 1 transaction)", fill_t)
    _report("marks for 10 open positions (in memory)", mark_t)
    _report("heartbeat (no database)", hb_t)
    _report("views changed by a fill (render, compare)", views_t["fill"])
    _report("views changed by a marks batch", views_t["marks"])
    _report("views after a heartbeat (none touched)", views_t["heartbeat"])
    print(f"  extremes rows written during {mark_batches} marks batches: "
          f"{store.metrics.extremes_writes._value.get():.0f} (flush interval {settings.store.extremes_flush_s}s)")


def end_to_end(home: Path, extra_toml: str, label: str, sequential: int = 300, pipelined: int = 3000) -> None:
    from tests.harness import instance

    with instance(home, extra_toml) as inst:
        inst.start("state_writer")
        inst.wait_hub()
        sender = Sender(inst.settings, "router")
        try:
            warm = SubmitOrder(intent_id="warm", mode="SIM", account="paper", symbol="BTCUSDT", side="BUY", qty=1.0)
            with Sender(inst.settings, "executor") as executor:
                executor.send_and_wait(warm, timeout=30)
            lat = []
            for n in range(sequential):
                side = "BUY" if n % 2 == 0 else "SELL"
                started = time.perf_counter()
                sender.send_and_wait(_fill(n, "BTCUSDT", side, 100.0), timeout=30)
                lat.append(time.perf_counter() - started)
            started = time.perf_counter()
            for n in range(pipelined):
                sender.send(_fill(10**6 + n, SYMBOLS[n % 10], "BUY" if (n // 10) % 2 == 0 else "SELL", 100.0))
            sender.flush(timeout=300)
            elapsed = time.perf_counter() - started
        finally:
            sender.close()
    print(f" [{label}] real state writer, fills through the bus")
    _report("fill ACK latency (journal fsync + store commit)", lat)
    print(f"  pipelined: {pipelined} fills in {elapsed:.2f} s = {pipelined / elapsed:,.0f} fills/s "
          "(group commit: one transaction per batch)")


def main() -> None:
    print(f"  machine: {platform.machine()} {os.cpu_count()} cpu(s), {platform.system()} {platform.release()}, "
          f"python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as d:
        in_process(Settings.model_validate({"home": d}), "sqlite WAL, synchronous=FULL")
    with tempfile.TemporaryDirectory() as d:
        in_process(Settings.model_validate({"home": d, "store": {"sqlite_synchronous": "NORMAL"}}),
                   "sqlite WAL, synchronous=NORMAL")
    pg = os.environ.get("V7_TEST_PG_URL")
    schema = f"v7bench_{uuid.uuid4().hex[:8]}"
    if pg:
        with tempfile.TemporaryDirectory() as d:
            in_process(Settings.model_validate({"home": d, "db_url": pg, "store": {"db_schema": schema}}),
                       "postgresql (local)")
    with tempfile.TemporaryDirectory() as d:
        end_to_end(Path(d), "", "sqlite")
    if pg:
        with tempfile.TemporaryDirectory() as d:
            end_to_end(Path(d), f'db_url = "{pg}"\n[store]\ndb_schema = "{schema}e"\n', "postgresql (local)")
        engine = create_engine(pg)
        with engine.begin() as conn:
            for name in (schema, f"{schema}e"):
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


if __name__ == "__main__":
    main()
