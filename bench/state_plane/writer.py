"""The real state writer (`v7 run state_writer`, positions store included) under load from
sender processes: durable-ACKed ingest throughput and ACK latency at a paced rate."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from prometheus_client.parser import text_string_to_metric_families

from actors.base.gc_tuning import tune_gc
from bench.state_plane.payload import positions
from config.settings import Settings, load_settings

V7 = str(Path(sys.executable).parent / "v7")


def _settings(home: str) -> Settings:
    return load_settings({"V7_HOME": home})


class RunningWriter:
    """A state writer process in a scratch V7_HOME; stopped with SIGTERM on exit."""

    def __init__(self, tick_ms: int = 100) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="v7bench-")
        self.home = self._tmp.name
        port_base = 20000 + os.getpid() % 20000
        Path(self.home, "runtime.toml").write_text(
            f"port_base = {port_base}\n[writer]\ntick_ms = {tick_ms}\n[dashboard]\nport = {port_base + 9}\n")
        self.settings = _settings(self.home)
        self.tick_s = tick_ms / 1000
        env = {k: v for k, v in os.environ.items() if not k.startswith("V7_")}
        env["V7_HOME"] = self.home
        self._log = open(Path(self.home, "writer.log"), "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen([V7, "run", "state_writer"], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def __enter__(self) -> RunningWriter:
        from bus.subscriber import SnapshotError, request_status

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                request_status(self.settings, timeout_s=0.5)
                return self
            except SnapshotError:
                if self.proc.poll() is not None:
                    break
        raise RuntimeError(f"state writer did not start: {Path(self.home, 'writer.log').read_text()[-2000:]}")

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self._tmp.cleanup()

    def cpu_seconds(self) -> float:
        """User + system CPU the writer process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metric(self, name: str, **labels: str) -> float:
        url = f"http://127.0.0.1:{self.settings.metrics_port('state_writer')}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0


# --- throughput --------------------------------------------------------------------------------


def _stream(home: str, name: str, count: int, window: int, go: mp.Event, out: mp.Queue) -> None:
    """Durable messages through `send()`: the outbox (size `window`) is the flow control, and
    `flush()` returns once the hub has ACKed every one of them."""
    from bus.sender import Sender

    sender = Sender(_settings(home), name, outbox_max=window)
    msgs = [positions(i) for i in range(count)]
    sender.send_and_wait(positions(), timeout=30)  # connected and warm
    tune_gc()  # as every actor process does after its set-up
    go.wait(30)
    started, cpu = time.monotonic(), time.process_time()
    for msg in msgs:
        sender.send(msg)
    if not sender.flush(120):
        raise RuntimeError(f"{name}: {sender.outbox_depth} messages never ACKed")
    ended, cpu = time.monotonic(), time.process_time() - cpu
    if sender.stats.acked != count + 1 or sender.stats.nacked:
        raise RuntimeError(f"{name}: {sender.stats}")
    out.put((started, ended, count, cpu))
    sender.close()


@dataclass(frozen=True)
class Ingest:
    rate: float  # durable-ACKed messages per second over all senders (first send to last ACK)
    sender_cpu_us: float  # CPU per message of a sending process (all its threads)
    writer_cpu_us: float  # CPU per message of the state writer process (all its threads)


def ingest(writer: RunningWriter, senders: int, per_sender: int, window: int = 5000) -> Ingest:
    spawn = mp.get_context("spawn")
    go, out = spawn.Event(), spawn.Queue()
    procs = [spawn.Process(target=_stream, args=(writer.home, "executor", per_sender, window, go, out))
             for n in range(senders)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every sender connect and warm up
    writer_cpu = writer.cpu_seconds()
    go.set()
    results = [out.get(timeout=300) for _ in procs]
    writer_cpu = writer.cpu_seconds() - writer_cpu
    for p in procs:
        p.join(30)
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    total = sum(r[2] for r in results)
    return Ingest(total / (end - start), sum(r[3] for r in results) / total * 1e6, writer_cpu / total * 1e6)


# --- latency -----------------------------------------------------------------------------------


def _paced(home: str, rate: int, seconds: float, out: mp.Queue) -> None:
    from bus.sender import Sender

    sender = Sender(_settings(home), "executor")
    sender.send_and_wait(positions(), timeout=30)
    total = int(rate * seconds)
    msgs = [positions(i) for i in range(total)]
    tune_gc()
    sent_at = [0.0] * total
    acked_at = [0.0] * total

    def done(i: int) -> object:
        return lambda _f: acked_at.__setitem__(i, time.perf_counter())

    start = time.perf_counter()
    i = 0
    while i < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while i < due:
            sent_at[i] = time.perf_counter()
            sender.submit(msgs[i]).add_done_callback(done(i))
            i += 1
        time.sleep(0.0005)
    achieved = total / (time.perf_counter() - start)
    sender.flush(60)
    sender.close()
    out.put((sorted(a - s for s, a in zip(sent_at, acked_at, strict=True)), achieved))


@dataclass(frozen=True)
class Latency:
    rate: int
    achieved: float
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def latency(writer: RunningWriter, rate: int, seconds: float) -> Latency:
    spawn = mp.get_context("spawn")
    out = spawn.Queue()
    proc = spawn.Process(target=_paced, args=(writer.home, rate, seconds, out))
    proc.start()
    lat, achieved = out.get(timeout=300)
    proc.join(30)
    n = len(lat)
    return Latency(rate, achieved, n, lat[n // 2] * 1e3, lat[min(n - 1, int(n * 0.99))] * 1e3, lat[-1] * 1e3)
