"""Fuzz a real state writer process on its ingest and snapshot endpoints.

Frames: random bytes, mutated valid frames, envelopes with hostile header values, valid
envelopes whose message has a hostile value somewhere (NaN, inf, negative qty, wrong types,
unknown keys, huge ints, long strings, deep nesting), wrong frame counts, frames over the size
limit and over the socket's hard cap, raw bytes that are not ZeroMQ at all. For each frame
the in-process codec is the oracle: the hub must answer what the codec decides (NACK with
the same code, or a commit/duplicate/out-of-order answer for a readable envelope).

After every batch a good message must be ACKed; at the end the writer's counters must add up
to what was sent, by code, and its RSS must be close to where it started. `make test` sends
a few thousand frames; `pytest -m slow` sends 1 000 000 to one writer process, which must never
restart (same pid and epoch at the end as at the start).
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.state_writer.authority import Authority
from bus import codec
from bus.codec import BusError
from bus.messages import MESSAGE_TYPES
from bus.protocol import DEFAULT_MAX_FRAME_BYTES, ErrorCode
from bus.subscriber import request_status
from tests import SIM_SCOPE
from tests.harness import Instance, instance
from tests.state_plane.helpers import RawClient, envelope
from tests.state_plane.strategies import paths, replace_at, wire_message
from tests.support.messages import kpis, position, positions, sample_ledger
from tests.support.metrics import scrape

HARD_CAP = 4 * DEFAULT_MAX_FRAME_BYTES
HOSTILE: list[Any] = [float("nan"), float("inf"), float("-inf"), -1, -1e308, 0, (1 << 64) - 1, -(1 << 63), True,
                      None, "", "x" * 70_000, b"\x00\xff", [], {}, [[[]]], {"surprise": 1}, "NaN",
                      "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", 1e19, "BTCUSDT"]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _base_messages() -> list[dict[str, Any]]:
    return [positions(position(), position("ETHUSDT", 0.0, 0.0, 0.0)).to_wire(), sample_ledger(2).to_wire(),
            kpis().to_wire(),
            {"type": "heartbeat", "v": 2, "actor": "executor", "pid": 1, "started_at": "2025-01-01T00:00:00Z",
             "interval_s": 1.0},
            {"type": "order_filled", "v": 2, "trade_id": "t", "order_id": "o", "intent_id": "i", "symbol": "BTCUSDT",
             "side": "BUY", "qty": 0.5, "price": 100.0, "liquidity": "maker"},
            {"type": "submit_order", "v": 2, "intent_id": "i", "symbol": "BTCUSDT", "side": "SELL", "qty": 1.0}]


def _deep_frame(depth: int, src: str) -> bytes:
    # Hand-built: msgpack's packer refuses to nest this deep, a hostile client need not.
    head = msgpack.packb({"src": src, "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0})
    body = msgpack.packb({"type": "positions_state", "v": 2})
    return b"\x86" + head[1:] + msgpack.packb("msg") + b"\x83" + body[1:] + msgpack.packb("positions") + (
        b"\x81\xa1k" * depth) + b"\x01"


class FrameMaker:
    """Random hostile frame sets; each new valid-looking envelope gets its own src."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.bases = _base_messages()
        self.n = 0

    def _src(self) -> str:
        self.n += 1
        return f"fz{self.n}"

    def _valid_frame(self) -> bytes:
        return envelope(self.rng.choice(self.bases), stream=self._src())

    def _mutate(self, frame: bytes) -> bytes:
        data = bytearray(frame)
        for _ in range(self.rng.randint(1, 4)):
            at = self.rng.randrange(len(data))
            op = self.rng.randrange(4)
            if op == 0:
                data[at] ^= 1 << self.rng.randrange(8)
            elif op == 1:
                data[at:at] = self.rng.randbytes(self.rng.randint(1, 8))
            elif op == 2 and len(data) > 1:
                del data[at]
            else:
                del data[max(1, at):]
        return bytes(data)

    def _hostile_message(self) -> dict[str, Any]:
        msg = self.rng.choice(self.bases)
        if self.rng.random() < 0.3:
            return {**msg, self.rng.choice(["surprise", "qty", "v", "type", ""]): self.rng.choice(HOSTILE)}
        where = self.rng.choice(paths(msg))
        return replace_at(msg, where, self.rng.choice(HOSTILE))

    def _hostile_header(self) -> bytes:
        env: dict[Any, Any] = {"src": self._src(), "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.0,
                               "msg": self.rng.choice(self.bases)}
        key = self.rng.choice([*env, "extra"])
        if self.rng.random() < 0.2:
            env.pop(key, None)
        else:
            env[key] = self.rng.choice(HOSTILE)
        return msgpack.packb(env, use_bin_type=True)

    def frames(self) -> list[bytes]:
        """One frame set as a DEALER sends it (the ROUTER adds the identity)."""
        kind = self.rng.randrange(8)
        if kind == 0:
            return [self.rng.randbytes(self.rng.randint(0, 600))]
        if kind == 1:
            return [self._mutate(self._valid_frame())]
        if kind == 2:
            return [self._hostile_header()]
        if kind in (3, 4):
            return [envelope(self._hostile_message(), stream=self._src())]
        if kind == 5:
            extra = [self.rng.choice([b"", b"x", self._valid_frame()]) for _ in range(self.rng.randint(1, 3))]
            return [self._valid_frame(), *extra] if self.rng.random() < 0.5 else [*extra, self._valid_frame()]
        if kind == 6:
            return [_deep_frame(self.rng.choice([50, 1000, 30_000]), self._src())]
        return [self._valid_frame()]


def expected(frames: list[bytes]) -> tuple[str, str | None]:
    """What the hub must answer: ('N', code) from the codec and the producer table, or ('ok', None)."""
    if len(frames) != 1:
        return "N", ErrorCode.BAD_FRAMES.value
    try:
        env = codec.decode_envelope(frames[0], DEFAULT_MAX_FRAME_BYTES)
    except BusError as err:
        return "N", err.code.value
    refusal = Authority().check(env.src, env.msg)
    if refusal is not None:
        return "N", refusal.code.value
    completed = codec.encode_envelope(env.src, env.inc, env.sseq, env.msg, env.ts, env.oldest)
    if len(completed) > DEFAULT_MAX_FRAME_BYTES:
        return "N", ErrorCode.FRAME_TOO_LARGE.value
    return "ok", None


def _counters(inst: Instance) -> Counter[str]:
    """The writer's answer counters: NACKs by code, commits, duplicates, out-of-order, disconnects."""
    out: Counter[str] = Counter()
    for (name, labels), value in scrape(inst).items():
        label = dict(labels)
        if name == "v7_writer_nacks_total":
            out[f"N:{label['code']}"] += int(value)
        elif name == "v7_writer_messages_total":
            out["A"] += int(value)
        elif name == "v7_writer_duplicates_total":
            out["D"] += int(value)
        elif name == "v7_writer_out_of_order_total":
            out["O"] += int(value)
        elif name == "v7_writer_ingest_disconnects_total":
            out["disconnects"] += int(value)
        elif name == "v7_writer_ingest_handshake_failures_total":
            out["handshake_failures"] += int(value)
        elif name == "v7_writer_snapshot_errors_total":
            out[f"S:{label['code']}"] += int(value)
        elif name == "v7_writer_snapshot_requests_total":
            out["S:ok"] += int(value)
    return out


def _delta(after: Counter[str], before: Counter[str]) -> Counter[str]:
    return Counter({k: after[k] - before[k] for k in after if after[k] != before[k]})


@pytest.fixture(scope="module")
def hub(shared_hub: Instance) -> Iterator[tuple[Instance, int]]:
    yield shared_hub, shared_hub.procs["state_writer"].pid


@pytest.fixture
def raw(shared_hub: Instance) -> Iterator[RawClient]:
    client = RawClient(shared_hub)
    yield client
    client.close()


class Probe:
    """Sends a good message after each batch: the hub must still commit it."""

    def __init__(self, inst: Instance) -> None:
        self.client = RawClient(inst)
        self.sseq = 0
        self.src = f"probe-{os.getpid()}-{time.monotonic_ns()}"

    def check(self) -> None:
        self.sseq += 1
        reply = self.client.ask(envelope(positions(position()).to_wire(), stream=self.src, sseq=self.sseq), timeout=30)
        assert reply[0] == "A", reply

    def close(self) -> None:
        self.client.close()


def _fuzz_ingest(inst: Instance, pid: int, raw: RawClient, total: int, seed: int, batch: int = 50) -> None:
    started = time.monotonic()
    maker = FrameMaker(seed)
    probe = Probe(inst)
    probe.check()  # warm: the probe stream exists before the RSS baseline
    rss_before = _rss_mib(pid)
    before = _counters(inst)
    sent: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    mismatches: list[tuple[list[bytes], Any, Any]] = []
    done = 0
    while done < total:
        sets = [maker.frames() for _ in range(min(batch, total - done))]
        for frames in sets:
            raw.send(*frames)
        replies = raw.replies(len(sets), timeout=60)
        want = Counter(expected(f) for f in sets)
        got = Counter(("N", r[2]) if r[0] == "N" else ("ok", None) for r in replies)
        if want != got:
            mismatches.append((sets, want, got))
        for r in replies:
            answered[f"N:{r[2]}" if r[0] == "N" else r[0]] += 1
        sent.update(f"N:{code}" if kind == "N" else "ok" for kind, code in want.elements())
        done += len(sets)
        probe.check()
        assert inst.procs["state_writer"].poll() is None, inst.logs("state_writer")[-3000:]
    counted = _delta(_counters(inst), before)
    counted["A"] -= probe.sseq - 1  # the probe's own commits after the baseline
    counted = Counter({k: v for k, v in counted.items() if v and (k[:2] == "N:" or k in ("A", "D", "O"))})
    rss_after = _rss_mib(pid)
    probe.close()
    assert not mismatches, f"{len(mismatches)} batches answered differently from the codec, first: {mismatches[0]}"
    # Every frame was answered, and the writer's counters say the same as the answers, by code.
    assert sum(answered.values()) == total
    assert counted == answered, (counted, answered)
    assert sent["ok"] == answered["A"] + answered["D"] + answered["O"]
    assert sum(v for k, v in answered.items() if k.startswith("N:")) >= total // 3  # it was hostile
    # Memory: NACKed input leaves nothing behind (generous: the committed ones add dedup streams).
    assert rss_after < rss_before + 40 + total / 1000, (rss_before, rss_after)
    seconds = time.monotonic() - started
    print(f"\nlive fuzz: {total} frames in {seconds:.0f}s ({total / seconds:.0f} frames/s), "
          f"{sum(v for k, v in answered.items() if k.startswith('N:'))} NACKed, {answered['A']} committed, "
          f"writer RSS {rss_before:.0f} -> {rss_after:.0f} MiB")


def test_random_frames_are_answered_as_the_codec_decides(hub: tuple[Instance, int], raw: RawClient) -> None:
    inst, pid = hub
    _fuzz_ingest(inst, pid, raw, total=3000, seed=6)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_random_frames_long(hub: tuple[Instance, int], raw: RawClient) -> None:
    """`make chaos`: a million frames into one writer process, which never restarts."""
    inst, pid = hub
    before = request_status(inst.settings, timeout_s=10)
    _fuzz_ingest(inst, pid, raw, total=1_000_000, seed=66, batch=500)
    after = request_status(inst.settings, timeout_s=10)
    assert (after["pid"], after["epoch"]) == (before["pid"], before["epoch"]) == (pid, before["epoch"]), (before, after)


def test_frames_over_the_limits(hub: tuple[Instance, int], raw: RawClient) -> None:
    """docs/bus_protocol.md §2: over bus.max_frame_bytes NACKed; over 4x dropped with the connection."""
    inst, pid = hub
    probe = Probe(inst)
    probe.check()
    rss_before = _rss_mib(pid)
    before = _counters(inst)
    heartbeat = _base_messages()[3]
    just_over = envelope({**heartbeat, "detail": "x" * DEFAULT_MAX_FRAME_BYTES}, stream="big1")
    under_cap = envelope({**heartbeat, "detail": "x" * (HARD_CAP - 1000)}, stream="big2")
    assert DEFAULT_MAX_FRAME_BYTES < len(just_over) < len(under_cap) < HARD_CAP
    for frame in (just_over, under_cap):
        reply = raw.ask(frame)
        assert reply[0] == "N" and reply[2] == ErrorCode.FRAME_TOO_LARGE.value, reply[:4]
    # Over the hard cap: a 10 MB string. No answer; the connection is closed and counted; the
    # same DEALER reconnects by itself and is served again.
    huge = envelope({**heartbeat, "detail": "x" * 10_000_000}, stream="big3")
    raw.send(huge)
    with pytest.raises(AssertionError, match="got 0 of 1"):
        raw.replies(1, timeout=3)
    inst.wait_for(lambda: _delta(_counters(inst), before)["disconnects"] >= 1, 10, "the disconnect to be counted")
    ok = raw.ask(envelope(positions(position()).to_wire(), stream="after-huge"), timeout=30)
    assert ok[0] == "A", ok
    # A burst of frames just under the cap is NACKed one by one; the memory is given back.
    for _ in range(40):
        raw.send(under_cap)
    assert {r[2] for r in raw.replies(40, timeout=120)} == {ErrorCode.FRAME_TOO_LARGE.value}
    probe.check()
    counted = _delta(_counters(inst), before)
    assert counted["N:frame_too_large"] == 42
    assert counted["disconnects"] >= 1  # (other tests' clients closing count too)
    inst.wait_for(lambda: _rss_mib(pid) < rss_before + 100, 20, f"writer RSS back near {rss_before:.0f} MiB")
    probe.close()


def test_completed_message_over_the_limit_is_refused(tmp_path: Path) -> None:
    """A frame under the limit whose defaults would multiply it (each `{}` becoming every field of the
    model) is NACKed: the hub would otherwise journal and publish a frame no subscriber accepts.
    (Every map is bounded now, so at the default 1 MiB limit no message completes past it; a hub
    with a 64 KiB limit shows the rule.)"""
    with instance(tmp_path, "[bus]\nmax_frame_bytes = 65536\n") as inst:
        inst.start_writer()
        client = RawClient(inst)
        try:
            actors = {f"a{i}": {} for i in range(1000)}
            frame = envelope({"type": "runtime_diagnostics", "v": 2, "runtime_diagnostics": {"actors": actors},
                              "scope": SIM_SCOPE.model_dump()}, stream="amp")
            assert len(frame) < 65536
            reply = client.ask(frame, timeout=60)
            assert reply[:3] == ["N", 1, ErrorCode.FRAME_TOO_LARGE.value], reply
        finally:
            client.close()


def test_bytes_that_are_not_zeromq(hub: tuple[Instance, int]) -> None:
    """Raw bytes on the ingest socket (no ZMTP greeting, or a greeting then garbage) are cut off and counted."""
    inst, _pid = hub
    path = inst.settings.ingest_endpoint.removeprefix("ipc://")
    before = _counters(inst)
    rng = random.Random(3)
    payloads = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", rng.randbytes(300),
                b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00NULL" + b"\x00" * 48 + rng.randbytes(200)]
    for payload in payloads:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(payload)
            time.sleep(0.2)
    inst.wait_for(lambda: _delta(_counters(inst), before)["disconnects"] >= len(payloads), 10,
                  "raw connections to be counted")
    assert _delta(_counters(inst), before)["handshake_failures"] >= 1
    Probe(inst).check()


SNAPSHOT_CASES: list[tuple[Callable[[], list[bytes]], str]] = [
    (lambda: [b"\xc1garbage"], "malformed"),
    (lambda: [msgpack.packb([1, 2])], "bad_request"),
    (lambda: [msgpack.packb({"op": "snapshot", "req": 1, "keys": "positions_state"})], "bad_request"),
    (lambda: [msgpack.packb({"op": "snapshot", "req": 2, "keys": [1, 2]})], "bad_request"),
    (lambda: [msgpack.packb({"op": "snapshot", "req": 3, "keys": ["nope", "x" * 1000]})], "bad_request"),
    (lambda: [msgpack.packb({"op": "drop_tables", "req": 4})], "bad_request"),
    (lambda: [msgpack.packb({"op": "snapshot", "req": 5, "keys": ["k"] * 40_000})], "frame_too_large"),
    (lambda: [msgpack.packb({"op": "snapshot", "req": float("nan"), "keys": ["zz"]})], "bad_request"),
    (lambda: [msgpack.packb({1: 2})], "malformed"),
    (lambda: [b"", msgpack.packb({"op": "snapshot", "req": 6})], "bad_frames"),
    (lambda: [msgpack.packb({"op": "snapshot", "req": 7}), b"x", b"y"], "bad_frames"),
]


def test_snapshot_endpoint_fuzz(hub: tuple[Instance, int]) -> None:
    import zmq

    inst, _pid = hub
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(inst.settings.snapshot_endpoint)
    rng = random.Random(9)
    want: Counter[str] = Counter()
    before = _counters(inst)
    try:
        def ask(frames: list[bytes]) -> dict[str, Any]:
            sock.send_multipart(frames)
            assert sock.poll(10_000), f"no answer to {frames!r:.200}"
            return msgpack.unpackb(sock.recv(), raw=False)

        for _round in range(20):
            for make, code in SNAPSHOT_CASES:
                reply = ask(make())
                assert reply.get("error") == code, (make(), reply)
                want[f"S:{code}"] += 1
            for _ in range(20):  # random bytes and random maps
                frame = rng.choice([rng.randbytes(rng.randint(0, 200)),
                                    msgpack.packb({rng.choice(["op", "req", "keys", "x"]): rng.choice(HOSTILE[:12])})])
                reply = ask([frame])
                want[f"S:{reply['error']}" if "error" in reply else "S:ok"] += 1
            reply = ask([msgpack.packb({"op": "snapshot", "req": "good", "keys": None})])
            assert reply["req"] == "good" and "open_positions" in reply["state"], reply.keys()
            want["S:ok"] += 1
    finally:
        sock.close(0)
    counted = _delta(_counters(inst), before)
    assert {k: v for k, v in counted.items() if k.startswith("S:")} == want


_any_message = st.lists(st.sampled_from(MESSAGE_TYPES).flatmap(wire_message), min_size=1, max_size=8)


def test_generated_messages_through_the_live_writer(hub: tuple[Instance, int], raw: RawClient) -> None:
    """Valid messages at the edges of every field (1e15 quantities, year 1 and 9999, longest strings)
    go through the whole commit path, positions store included; snapshots and files stay good."""
    inst, _pid = hub
    counter = iter(range(10**9))

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(_any_message)
    def run(raws: list[dict[str, Any]]) -> None:
        # Each trading message in an account of its own: two 1e15 fills into one position would be
        # refused by the store's bound, which `expected` (stateless) cannot predict.
        raws = [{**r, "account": f"acct{next(counter)}"} if "account" in r and "symbol" in r else r for r in raws]
        frames = [envelope(r, stream=f"gen{next(counter)}") for r in raws]
        for frame in frames:
            raw.send(frame)
        replies = raw.replies(len(frames), timeout=60)
        want = Counter(expected([f]) for f in frames)
        got = Counter(("N", r[2]) if r[0] == "N" else ("ok", None) for r in replies)
        assert want == got, (raws, replies)
        assert inst.procs["state_writer"].poll() is None

    run()
    from bus.subscriber import request_snapshot

    snap = request_snapshot(inst.settings, timeout_s=30)  # every key, hook views included
    assert "open_positions" in snap.state
    result = inst.run_cli("validate", str(inst.state_dir))
    assert result.returncode == 0, result.stdout + result.stderr


def test_sender_refuses_a_message_too_large_for_a_frame(hub: tuple[Instance, int]) -> None:
    """Over the hub's hard cap a message would be dropped with the connection, never answered, and
    resent on every reconnect ahead of everything newer: the sender refuses it up front instead."""
    from bus.messages import Kpis, PortfolioKpis, SymbolKpis
    from bus.sender import Sender

    inst, _pid = hub
    row = SymbolKpis(pnl=1.0, pnl_pct=0.1, exposure_nav_pct=0.1)
    # Built without validation (per_symbol is bounded at 1000): the sender must refuse it by size
    # whatever the model says, as it would a message from a newer model version.
    huge = Kpis.model_construct(portfolio=PortfolioKpis(nav=1.0, dd_pct=0.0),
                                       per_symbol={f"S{i:07d}": row for i in range(150_000)})
    assert len(codec.pack_message(huge)) > HARD_CAP
    with Sender(inst.settings, "executor") as sender:
        started = time.monotonic()
        with pytest.raises(BusError) as err:
            sender.send_and_wait(huge, timeout=10)
        assert err.value.code is ErrorCode.FRAME_TOO_LARGE
        assert time.monotonic() - started < 5
        assert sender.outbox_depth == 0
        assert sender.send_and_wait(positions(position()), timeout=10) > 0
