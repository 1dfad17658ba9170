"""The event-driven trading path, end to end, on real processes (issue 10's targets).

    .venv/bin/python -m bench.trading_path [--rate 20] [--seconds 30] [--idle-s 60] [--exit-s 120]

1. decision -> order: an order intent is created (its `ts`) and committed through the hub;
   the router reacts and the paper exchange accepts its first order (the order's
   `created_at`). Intents from this process, as the executor, at `--rate` per second.
2. mark -> exit order: the whole group trades; for every TP/SL exit, from the market tick
   that first crossed the level (its `ts`) to the exit's first order accepted by the exchange;
   and the exit request is checked to be journaled before that order.
3. fill -> store: a fill at the exchange (its `ts`) to the hub publishing the `open_positions`
   view of the commit that applied it.
4. the whole group idle (no signals) for `--idle-s`: CPU of all programs and their total RSS.

Every time is read from the same wall clock on one machine; all stamps come from the
processes themselves (intent ts, exchange order and fill times, the view frame's arrival).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import msgpack
import zmq

from bench.state_plane import machine
from bus.messages import OrderFilled, RequestExit, SubmitOrder
from bus.sender import Sender
from bus.subscriber import Subscriber, ViewChanged
from exchange.client import RpcExchange
from exchange.stream_client import ExchangeStream, Resynced
from exchange.streams import BookTicked, OrderChanged, TradeExecuted
from tests.harness import Instance, instance

PROGRAMS = ("exchange", "executor", "router", "exit_scanner", "sync", "diagnostics", "dashboard")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _line(name: str, ms: list[float], target: str) -> str:
    if not ms:
        return f"| {name} | no samples | {target} |"
    return (f"| {name} | n={len(ms)}, p50 {_pct(ms, 0.5):.2f} ms, p90 {_pct(ms, 0.9):.2f} ms, "
            f"p99 {_pct(ms, 0.99):.2f} ms, max {max(ms):.2f} ms | {target} |")


def _wait_stream(stream: ExchangeStream, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not stream.synced and time.monotonic() < deadline:
        if stream.socket.poll(100, zmq.POLLIN):
            stream.drain()
        else:
            stream.check()
    if not stream.synced:
        raise RuntimeError("exchange streams never joined")


def _toml(extra: str = "") -> str:
    return "[paper]\nreject_prob = 0.0\n" + extra


# --- 1. decision -> order ------------------------------------------------------------------------------


def decision_to_order(root: Path, rate: float, seconds: float) -> list[float]:
    with instance(root / "d2o", _toml()) as inst:
        for name in ("state_writer", "exchange", "router"):
            inst.start(name)
        inst.wait_hub()
        rpc = RpcExchange(inst.settings, timeout_s=10)
        stream = ExchangeStream(inst.settings, rpc, streams=("account",))
        _wait_stream(stream)
        created: dict[str, float] = {}
        latencies: list[float] = []
        sock = stream.socket  # read raw: this process must not hold the GIL parsing every event
        with Sender(inst.settings, "executor") as executor:
            total = int(rate * seconds)
            next_at = time.monotonic()
            sent = 0
            deadline = time.monotonic() + seconds + 30
            while time.monotonic() < deadline and (sent < total or created):
                now = time.monotonic()
                if sent < total and now >= next_at:
                    intent_id = f"bench-{sent}"
                    # Alternate sides so the paper account stays near flat and margin never runs out.
                    msg = SubmitOrder(intent_id=intent_id, mode="SIM", account="paper", symbol="BTCUSDT",
                                      side="BUY" if sent % 2 == 0 else "SELL", qty=0.001, purpose="entry")
                    created[intent_id] = msg.ts.timestamp()
                    executor.send(msg)
                    sent += 1
                    next_at += 1.0 / rate
                if not sock.poll(max(0, int((next_at - time.monotonic()) * 1000)), zmq.POLLIN):
                    continue
                while True:
                    try:
                        topic, _seq, body = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if topic != b"account":
                        continue
                    event = msgpack.unpackb(body)
                    if event.get("kind") != "order":
                        continue
                    order = event["order"]
                    intent_id, _dot, child = order["client_order_id"].rpartition(".")
                    t0 = created.pop(intent_id, None) if child == "1" else None
                    if t0 is not None:
                        latencies.append((datetime.fromisoformat(order["created_at"]).timestamp() - t0) * 1e3)
        stream.close()
        rpc.close()
        return latencies


# --- 2 and 3. the whole group trading --------------------------------------------------------------------


def _trading_group(inst: Instance) -> None:
    for name in ("state_writer", "exchange", "executor", "router", "exit_scanner", "sync", "diagnostics"):
        inst.start(name)
    inst.wait_hub()


def exits_and_fills(root: Path, seconds: float) -> tuple[list[float], list[float], int]:
    """(mark -> exit order ms, fill -> view ms, exits whose request was not journaled first)."""
    # Tight brackets, short bars: many entries, and stops crossed often.
    strategy = root / "strategy.json"
    base = json.loads((Path(__file__).resolve().parent.parent / "config" / "strategy_config.json").read_text())
    base["signal"]["entry_threshold"] = 0.15
    base["entry"]["tp_atr_mult"] = 0.6
    base["entry"]["sl_atr_mult"] = 0.6
    strategy.write_text(json.dumps(base))
    extra = f'strategy_config = "{strategy}"\n[paper]\nreject_prob = 0.0\nbar_s = 2.0\n'
    with instance(root / "exits", extra) as inst:
        _trading_group(inst)
        rpc = RpcExchange(inst.settings, timeout_s=10)
        stream = ExchangeStream(inst.settings, rpc)
        _wait_stream(stream)
        sub = Subscriber(inst.settings, keys=["open_positions"], topics=[RequestExit.TYPE, OrderFilled.TYPE])
        marks: dict[str, list[tuple[float, float]]] = defaultdict(list)  # symbol -> (ts, mark)
        exits: dict[str, RequestExit] = {}
        exit_seq: dict[str, tuple[int, float]] = {}  # intent -> (hub seq, arrival)
        first_order: dict[str, float] = {}
        fills: dict[str, float] = {}  # trade id -> fill ts
        entry_fills: dict[str, list[float]] = defaultdict(list)  # symbol -> entry fill ts
        committed_fills: dict[int, list[str]] = defaultdict(list)  # hub seq -> trade ids
        fill_lat: list[float] = []
        unjournaled = 0
        poller = zmq.Poller()
        poller.register(stream.socket, zmq.POLLIN)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if sub.socket is not None and sub.socket not in dict(poller.sockets):
                poller.register(sub.socket, zmq.POLLIN)
            events = dict(poller.poll(200))
            if stream.socket in events:
                for item in stream.drain():
                    if isinstance(item, BookTicked):
                        marks[item.top.symbol].append((item.top.ts.timestamp(), item.top.mark))
                    elif isinstance(item, TradeExecuted):
                        fills[item.fill.trade_id] = item.fill.ts.timestamp()
                        if not item.fill.client_order_id.startswith("ex-"):
                            entry_fills[item.fill.symbol].append(item.fill.ts.timestamp())
                    elif isinstance(item, OrderChanged) and item.order.client_order_id.startswith("ex-"):
                        intent = item.order.client_order_id.rsplit(".", 1)[0]
                        first_order.setdefault(intent, item.order.created_at.timestamp())
                    elif isinstance(item, Resynced):
                        pass
            for item in sub.poll(0):
                if isinstance(item, ViewChanged):
                    arrived = time.time()
                    for trade_id in committed_fills.pop(item.seq, []):
                        if trade_id in fills:
                            fill_lat.append((arrived - fills[trade_id]) * 1e3)
                    continue
                msg = item.msg
                if isinstance(msg, RequestExit):
                    exits[msg.intent_id] = msg
                    exit_seq[msg.intent_id] = (item.seq, time.time())
                elif isinstance(msg, OrderFilled):
                    committed_fills[item.seq].append(msg.trade_id)
        exit_lat: list[float] = []
        seen_positions: set[str] = set()
        for intent_id, req in sorted(exits.items(), key=lambda kv: kv[1].ts):
            placed = first_order.get(intent_id)
            # A second exit of one position is a retrigger (after retrigger_after_s), not a reaction.
            retrigger = req.position_id in seen_positions
            seen_positions.add(req.position_id)
            if placed is None or retrigger or req.reason not in ("TP", "SL") or req.level is None:
                continue
            long_position = req.side == "SELL"
            # A level crossed before the position existed, or while an earlier exit of the symbol
            # was still working, is not this exit's: count from the later of the two.
            opened = max((ts for ts in entry_fills[req.symbol] if ts <= placed), default=0.0)
            opened = max([opened, *(e.ts.timestamp() for e in exits.values()
                                    if e.symbol == req.symbol and e.ts < req.ts)])
            crossing = [ts for ts, mark in marks[req.symbol] if opened <= ts <= placed and (
                (req.reason == "SL" and (mark <= req.level if long_position else mark >= req.level))
                or (req.reason == "TP" and (mark >= req.level if long_position else mark <= req.level)))]
            if not crossing:
                continue
            # The first crossing tick of this episode: walk back from the latest one before the order.
            ticks = [ts for ts, _m in marks[req.symbol] if opened <= ts <= placed]
            first = crossing[-1]
            for ts in reversed(ticks):
                if ts in crossing:
                    first = ts
                else:
                    break
            exit_lat.append((placed - first) * 1e3)
            seq_arrival = exit_seq.get(intent_id)
            if seq_arrival is None:
                unjournaled += 1
        sub.close()
        stream.close()
        rpc.close()
        return exit_lat, fill_lat, unjournaled


# --- 4. idle --------------------------------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_group(root: Path, seconds: float) -> tuple[float, float, str]:
    """(CPU of all programs as % of one core, total RSS MiB, per program) with no signals and no positions."""
    strategy = root / "idle_strategy.json"
    base = json.loads((Path(__file__).resolve().parent.parent / "config" / "strategy_config.json").read_text())
    # The largest threshold allowed; the volatility factor is below 1 whenever ATR > 0, so the
    # weighted score never reaches it: no signal, the group idles.
    base["signal"]["entry_threshold"] = 1.0
    strategy.write_text(json.dumps(base))
    with instance(root / "idle", f'strategy_config = "{strategy}"\n') as inst:
        for name in ("state_writer", *PROGRAMS):
            inst.start(name)
        inst.wait_hub()
        time.sleep(10)  # past start-up (imports, warm-up bars, first snapshots)
        pids = {name: p.pid for name, p in inst.procs.items()}
        cpu0 = {name: _cpu_s(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        cpu = {name: (_cpu_s(pid) - cpu0[name]) / elapsed * 100.0 for name, pid in pids.items()}
        rss = {name: _rss_mib(pid) for name, pid in pids.items()}
        dead = [name for name, proc in inst.procs.items() if proc.poll() is not None]
        if dead:
            raise RuntimeError(f"programs exited during the idle run: {dead}")
        each = ", ".join(f"{name} {cpu[name]:.1f}% {rss[name]:.0f} MiB" for name in pids)
        return sum(cpu.values()), sum(rss.values()), each


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--exit-s", type=float, default=120.0)
    parser.add_argument("--idle-s", type=float, default=60.0)
    args = parser.parse_args(argv if argv is not None else [])
    print("machine:", ", ".join(f"{k}: {v}" for k, v in machine.describe().items()), flush=True)
    root = Path(tempfile.mkdtemp(prefix="v7-bench-path-"))
    rows = ["| path | measured | target |", "|---|---|---|"]
    d2o = decision_to_order(root, args.rate, args.seconds)
    rows.append(_line(f"decision -> order at the exchange ({args.rate:g} intents/s)", d2o, "p99 <= 5 ms"))
    print(rows[-1], flush=True)
    exit_lat, fill_lat, unjournaled = exits_and_fills(root, args.exit_s)
    rows.append(_line("mark crossing a stop -> exit order at the exchange", exit_lat, "p99 <= 10 ms"))
    print(rows[-1], flush=True)
    rows.append(_line("fill at the exchange -> open_positions view published", fill_lat, "p99 <= 10 ms"))
    print(rows[-1], f"(exits without a journaled request first: {unjournaled})", flush=True)
    cpu, rss, each = idle_group(root, args.idle_s)
    rows.append(f"| whole group idle {args.idle_s:g} s (8 programs) | CPU {cpu:.1f}% of one core, RSS {rss:.0f} MiB "
                f"| no worse than 6%, 411 MB |")
    print(rows[-1], f"({each})", flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
