"""Paper exchange: RPC round-trip latency from a client process, and the engine's cost per tick.

    .venv/bin/python -m bench.paper_exchange [--calls 2000]

Starts a real `v7 run exchange` in a temp instance (ipc), measures from this process,
stops it. Prints p50/p99/max per call and calls per second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from config.settings import PaperSettings
from exchange.adapter import OrderRequest
from exchange.client import RpcExchange
from exchange.errors import OrderRejected
from exchange.paper.engine import PaperExchange
from exchange.paper.store import PaperStore
from tests.harness import instance


def _report(name: str, samples: list[float]) -> None:
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1e3  # noqa: E731
    print(f"{name:<28} n={len(samples):>5}  p50 {p(0.5):7.3f} ms  p99 {p(0.99):7.3f} ms  "
          f"max {samples[-1] * 1e3:7.3f} ms  {len(samples) / sum(samples):8.0f}/s")


def bench_rpc(calls: int) -> None:
    with instance(Path(tempfile.mkdtemp())) as inst:
        inst.start("exchange")
        ex = RpcExchange(inst.settings, timeout_s=10)
        deadline = time.monotonic() + 30
        while True:
            try:
                ex.ping()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        symbols = list(inst.settings.symbols)
        for name, call in (
            ("ping", ex.ping),
            ("fetch_tops(3)", lambda: ex.fetch_tops(symbols)),
            ("fetch_positions", ex.fetch_positions),
            ("fetch_bars(120)", lambda: ex.fetch_bars("BTCUSDT", 120)),
        ):
            samples = []
            for _ in range(calls):
                t = time.perf_counter()
                call()
                samples.append(time.perf_counter() - t)
            _report(name, samples)
        samples = []
        for n in range(calls // 4):
            top = ex.fetch_tops(["ETHUSDT"])["ETHUSDT"]
            t = time.perf_counter()
            try:
                ex.place_order(OrderRequest(client_order_id=f"b-{n}", symbol="ETHUSDT", side="BUY",
                                            order_type="LIMIT", qty=0.01, price=round(top.bid * 0.99, 2),
                                            post_only=True))
            except OrderRejected:  # the simulated overload (reject_prob); not a latency sample
                continue
            ex.cancel_order("ETHUSDT", f"b-{n}")
            samples.append(time.perf_counter() - t)
        _report("place+cancel (fsync'd)", samples)
        ex.close()


def bench_tick(ticks: int) -> None:
    paper = PaperSettings.model_validate({"warmup_bars": 10})
    with tempfile.TemporaryDirectory() as tmp:
        clock = [1_750_000_000.0]
        engine = PaperExchange(paper, ("BTCUSDT", "ETHUSDT", "SOLUSDT"), PaperStore(Path(tmp) / "x.db"),
                               lambda: clock[0])
        samples = []
        for _ in range(ticks):
            clock[0] += paper.tick_s
            t = time.perf_counter()
            engine.tick()
            samples.append(time.perf_counter() - t)
        engine.close()
    _report("engine tick (3 symbols)", samples)
    print(f"{'':<28} mean {statistics.fmean(samples) * 1e3:.3f} ms per {paper.tick_s:g} s tick")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    bench_rpc(args.calls)
    bench_tick(args.calls)


if __name__ == "__main__":
    main()
