"""The state-plane benchmark: `python -m bench.state_plane [--quick] [--rounds N] [--write-doc]`.

Also run by `make bench` / `python -m bench` (with the defaults).

The machine is shared and its load moves, so the ceiling and the writer's ingest are
measured in alternating rounds and the ratio is taken between their medians (each round's
own ratio is printed too).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.state_plane import baseline, machine, raw, writer
from bus.messages import PositionsState

DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
_SECTION = re.compile(r"(<!-- BEGIN BENCH RESULTS -->\n).*?(<!-- END BENCH RESULTS -->)", re.S)


class Table:
    def __init__(self) -> None:
        self.lines = ["| | |", "|---|---|"]
        self.lines += [f"| {k} | {v} |" for k, v in machine.describe().items()]
        self.lines.append(f"| run | {time.strftime('%Y-%m-%d %H:%M:%S %Z')} |")
        self.lines += ["", "| measurement | result |", "|---|---|"]

    def row(self, name: str, value: str) -> None:
        self.lines.append(f"| {name} | {value} |")
        print(f"  {name}: {value}", flush=True)

    def text(self) -> str:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return "\n".join([*self.lines, f"| load average (1 min) at the end | {load:.2f} |"]) + "\n"


def _ingest_round(w: writer.RunningWriter, senders: int, count: int) -> tuple[writer.Ingest, tuple[float, ...]]:
    """One ingest run, and (file writes, messages, seconds) seen by the writer during it."""
    msgs0 = w.metric("v7_writer_messages_total", type=PositionsState.TYPE)
    writes0 = w.metric("v7_writer_file_write_seconds_count", file="positions_state")
    started = time.monotonic()
    result = writer.ingest(w, senders, count // senders)
    time.sleep(3 * w.tick_s)  # let the last tick's file write land
    files = (w.metric("v7_writer_file_write_seconds_count", file="positions_state") - writes0,
             w.metric("v7_writer_messages_total", type=PositionsState.TYPE) - msgs0, time.monotonic() - started)
    return result, files


def _med(values: list[float]) -> float:
    return statistics.median(values)


def run(quick: bool, rounds: int) -> str:
    scale = 0.25 if quick else 1.0
    t = Table()
    ceilings: list[raw.Ceiling] = []
    ingests: dict[int, list[writer.Ingest]] = {1: [], 3: []}
    files: dict[int, tuple[float, ...]] = {}
    with writer.RunningWriter(tick_ms=100) as w:
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}", flush=True)
            ceilings.append(raw.ceiling(int(200_000 * scale)))
            for senders in (1, 3):
                result, files[senders] = _ingest_round(w, senders, int(40_000 * scale))
                ingests[senders].append(result)
            print(f"  ceiling {ceilings[-1].rate:,.0f}/s, ingest 1 sender {ingests[1][-1].rate:,.0f}/s, "
                  f"3 senders {ingests[3][-1].rate:,.0f}/s", flush=True)
        ceiling = _med([c.rate for c in ceilings])
        push, pull = _med([c.push_cpu_us for c in ceilings]), _med([c.pull_cpu_us for c in ceilings])
        t.row("raw pyzmq PUSH/PULL msgpack, 1 sender (ceiling)",
              f"{ceiling:,.0f} msg/s (rounds: {', '.join(f'{c.rate:,.0f}' for c in ceilings)}); "
              f"CPU per message: push {push:.1f} us, pull {pull:.1f} us")
        for senders in (1, 3):
            runs = ingests[senders]
            rate = _med([i.rate for i in runs])
            sender_cpu, writer_cpu = _med([i.sender_cpu_us for i in runs]), _med([i.writer_cpu_us for i in runs])
            per_round = ", ".join(f"{i.rate / c.rate:.2f}x" for i, c in zip(runs, ceilings, strict=True))
            t.row(f"state writer durable-ACKed ingest, {senders} sender{'s' if senders > 1 else ''}",
                  f"{rate:,.0f} msg/s = **{rate / ceiling:.2f}x** ceiling (rounds: {per_round}); CPU per message: "
                  f"sender {sender_cpu:.1f} us, writer {writer_cpu:.1f} us")
        one = ingests[1]
        projected = max(push, pull) / max(_med([i.sender_cpu_us for i in one]), _med([i.writer_cpu_us for i in one]))
        t.row("same ratio from CPU cost, each process on its own core (slowest process of each pipeline)",
              f"{projected:.2f}x")
        for senders, (n_writes, n_msgs, secs) in files.items():
            t.row(f"positions_state.json writes, last {senders}-sender round",
                  f"{n_writes:,.0f} writes for {n_msgs:,.0f} messages in {secs:.1f} s "
                  f"(<= {secs / w.tick_s:,.0f} ticks of {w.tick_s * 1000:.0f} ms)")
        for rate in (1000, 10_000):
            print(f"ACK latency at {rate} msg/s ...", flush=True)
            lat = writer.latency(w, rate, (6.0 if rate == 1000 else 3.0) * scale)
            t.row(f"ACK latency at {rate:,} msg/s (achieved {lat.achieved:,.0f}/s, n={lat.count:,})",
                  f"p50 {lat.p50_ms:.2f} ms, **p99 {lat.p99_ms:.2f} ms**, max {lat.max_ms:.1f} ms")
        fsync = w.metric("v7_writer_journal_fsync_seconds_sum") / max(1.0, w.metric(
            "v7_writer_journal_fsync_seconds_count"))
        batches = w.metric("v7_writer_batch_messages_sum") / max(1.0, w.metric("v7_writer_batch_messages_count"))
        slow = 1 - w.metric("v7_writer_journal_fsync_seconds_bucket", le="0.005") / max(1.0, w.metric(
            "v7_writer_journal_fsync_seconds_count"))
        t.row("journal group commit, whole run",
              f"mean write+fsync {fsync * 1000:.2f} ms, {slow:.1%} over 5 ms; mean {batches:.1f} messages per fsync")

    print("baseline: direct JSON file write per update ...", flush=True)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as scratch:
        updates, n = baseline.direct_writes(int(2000 * scale), scratch)
    t.row("baseline: JSON file rewritten per update (temp + fsync + replace)",
          f"{updates:,.0f} updates/s, {n:,} file writes for {n:,} updates")
    return t.text()


def main(argv: list[str] | None = None) -> int:
    """`argv` None (as `python -m bench` calls it) means the defaults."""
    parser = argparse.ArgumentParser(prog="python -m bench.state_plane")
    parser.add_argument("--quick", action="store_true", help="a quarter of the message counts")
    parser.add_argument("--rounds", type=int, default=3, help="alternating ceiling/ingest rounds (default 3)")
    parser.add_argument("--write-doc", action="store_true", help=f"put the table into docs/{DOC.name}")
    args = parser.parse_args(argv or [])
    table = run(args.quick, max(1, args.rounds))
    print()
    print(table)
    if args.write_doc:
        DOC.write_text(_SECTION.sub(lambda m: m.group(1) + table + m.group(2), DOC.read_text()))
        print(f"wrote {DOC}")
    return 0
