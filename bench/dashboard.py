"""Diagnostics and dashboard costs: folding messages, building a view, and commit-to-browser latency.

    .venv/bin/python -m bench.dashboard [--messages 100000] [--rounds 50]

1. DiagnosticsTracker.apply throughput and compute_liveness cost (in process).
2. DashboardFacade view build + JSON for a large state (50 positions, 20,000 NAV samples kept,
   1,500 sent, 20 veto reasons x 30 symbols), and the JSON size one browser receives per update.
3. Commit-to-stream latency: a real state writer and dashboard (ipc); a PositionsState is
   sent and timed from before send_and_wait until the dashboard's SSE stream carries it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from actors.dashboard.facade import DashboardFacade
from actors.diagnostics.liveness import compute_liveness, liveness_stamps
from actors.diagnostics.tracker import DiagnosticsTracker
from bus.messages import (
    EntryVetoed,
    PositionRow,
    PositionsState,
    RouterActed,
    RuntimeDiagnostics,
    Scope,
    SignalGenerated,
    VetoCounters,
    utc_now,
)
from bus.sender import Sender
from config.strategy import DiagnosticsConfig, LivenessConfig
from tests.dashboard import samples
from tests.harness import instance

SIM = Scope(mode="SIM", network="paper", account="paper")

SYMBOLS = [f"SYM{i:02d}USDT" for i in range(50)]


def _pct(samples_s: list[float], q: float) -> float:
    ordered = sorted(samples_s)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def bench_tracker(n: int) -> None:
    now = utc_now()
    msgs = [
        SignalGenerated(ts=now, signal_id=f"s{i}", symbol="BTCUSDT", direction="LONG", score=0.5) if i % 3 == 0 else
        EntryVetoed(ts=now, symbol=SYMBOLS[i % 30], reason=f"reason_{i % 20}") if i % 3 == 1 else
        RouterActed(ts=now, intent_id=f"i{i}", symbol="BTCUSDT", action="post_maker")
        for i in range(n)
    ]
    tracker = DiagnosticsTracker(DiagnosticsConfig())
    started = time.perf_counter()
    for msg in msgs:
        tracker.apply(msg)
    elapsed = time.perf_counter() - started
    print(f"tracker.apply              {n} msgs  {n / elapsed:10.0f} msg/s  {elapsed / n * 1e6:6.2f} us/msg")
    cfg = LivenessConfig()
    rounds = 10_000
    started = time.perf_counter()
    for _ in range(rounds):
        compute_liveness(cfg, liveness_stamps(tracker.veto, tracker.exits), now)
    print(f"compute_liveness           {(time.perf_counter() - started) / rounds * 1e6:6.2f} us/call")


def bench_view(rounds: int) -> None:
    now = utc_now()
    facade = DashboardFacade()
    rows = [PositionRow(symbol=s, side="LONG", qty=1.0, entry_price=100.0, mark_price=101.0, notional=101.0,
                        unrealized_pnl=1.0) for s in SYMBOLS]
    facade.apply(PositionsState(scope=SIM, positions=rows))
    for msg in samples.documents(now)[1:]:
        facade.apply(msg)
    for i in range(20_000):
        facade.apply(samples.nav(10_000 + i % 50, 10_050, now + timedelta(seconds=i)))
    by_reason_symbol = {f"reason_{r}": {SYMBOLS[s]: r + s for s in range(30)} for r in range(20)}
    vc = VetoCounters(by_reason={r: sum(v.values()) for r, v in by_reason_symbol.items()},
                      by_reason_symbol=by_reason_symbol)
    facade.apply(RuntimeDiagnostics(scope=SIM, runtime_diagnostics=DiagnosticsTracker(DiagnosticsConfig()).block()
                                    .model_copy(update={"veto_counters": vc})))
    times = []
    body = ""
    for _ in range(rounds):
        facade.apply(samples.router())  # a change: the next view is rebuilt
        started = time.perf_counter()
        _version, body = facade.view_json()
        times.append(time.perf_counter() - started)
    print(f"view build + JSON          p50 {_pct(times, 0.5):7.2f} ms  p99 {_pct(times, 0.99):7.2f} ms  "
          f"size {len(body) / 1024:6.1f} KiB")


def bench_latency(rounds: int) -> None:
    with instance(Path(tempfile.mkdtemp())) as inst:
        inst.start("state_writer")
        inst.wait_hub()
        inst.start("dashboard")
        url = f"http://127.0.0.1:{inst.settings.dashboard.port}/api/events"
        deadline = time.monotonic() + 30
        while True:
            try:
                stream = urllib.request.urlopen(url, timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        sender = Sender(inst.settings, "executor")
        latencies = []
        try:
            for i in range(rounds):
                time.sleep(0.3)  # past the stream's 0.1 s burst window: the latency of one isolated change
                qty = round(0.001 * (i + 1), 6)
                row = PositionRow(symbol="BTCUSDT", side="LONG", qty=qty, entry_price=100.0, mark_price=100.0,
                                  notional=qty * 100.0, unrealized_pnl=0.0)
                started = time.perf_counter()
                sender.send_and_wait(PositionsState(scope=SIM, positions=[row]), timeout=10)
                for raw in stream:
                    line = raw.decode()
                    if line.startswith("data: "):
                        rows_seen = json.loads(line[6:])["positions"]["rows"]
                        if rows_seen and rows_seen[0]["qty"] == qty:
                            break
                latencies.append(time.perf_counter() - started)
        finally:
            stream.close()
            sender.close()
            inst.kill("dashboard", wait=15)
    print(f"commit -> SSE event        p50 {_pct(latencies, 0.5):7.1f} ms  p99 {_pct(latencies, 0.99):7.1f} ms  "
          f"max {max(latencies) * 1e3:7.1f} ms  (n={rounds}, isolated changes; bursts coalesce for 0.1 s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    bench_tracker(args.messages)
    bench_view(args.rounds)
    bench_latency(args.rounds)


if __name__ == "__main__":
    main()
