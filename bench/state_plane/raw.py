"""The ceiling: raw pyzmq PUSH -> PULL of the same message as a msgpack map, no validation,
no journal, no replies. Sender and receiver are separate processes, as actors are."""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from dataclasses import dataclass

import msgpack
import zmq

from bench.state_plane.payload import positions


@dataclass(frozen=True)
class Ceiling:
    rate: float  # messages per second received and decoded
    push_cpu_us: float  # CPU per message of the sending process
    pull_cpu_us: float  # CPU per message of the receiving process


def _push(endpoint: str, count: int, ready: mp.Event, out: mp.Queue) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.connect(endpoint)
    doc = positions().to_wire()
    ready.wait(10)
    cpu = time.process_time()
    for i in range(count):
        doc["positions"][0]["realized_pnl"] = float(i)
        sock.send(msgpack.packb(doc))
    out.put(time.process_time() - cpu)
    sock.close(linger=-1)
    ctx.term()


def ceiling(count: int) -> Ceiling:
    with tempfile.TemporaryDirectory() as tmp:
        endpoint = f"ipc://{tmp}/raw.sock"
        ctx = zmq.Context()
        pull = ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.RCVHWM, 100_000)
        pull.bind(endpoint)
        spawn = mp.get_context("spawn")
        ready, out = spawn.Event(), spawn.Queue()
        proc = spawn.Process(target=_push, args=(endpoint, count, ready, out))
        proc.start()
        ready.set()
        msgpack.unpackb(pull.recv())
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(count - 1):
            msgpack.unpackb(pull.recv())
        elapsed, pull_cpu = time.perf_counter() - started, time.process_time() - cpu
        push_cpu = out.get(timeout=60)
        proc.join(30)
        pull.close(0)
        ctx.term()
    return Ceiling((count - 1) / elapsed, push_cpu / count * 1e6, pull_cpu / count * 1e6)
