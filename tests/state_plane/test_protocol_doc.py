"""docs/bus_protocol.md against the running hub, point by point, with a client written from the
doc alone: a ZeroMQ DEALER/SUB and msgpack, none of the project's bus code (a shared bug there
would hide a disagreement). Each test names the rule it reads.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from tests.harness import Instance

# Section 2: `2025-01-01T00:00:00.123456Z`, the fraction left out when it is zero.
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


class Client:
    """One ingest connection carrying one stream (`src`, `inc`), as section 1 asks."""

    def __init__(self, ctx: zmq.Context[Any], inst: Instance, src: str, inc: int) -> None:
        self.src, self.inc = src, inc
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(inst.settings.ingest_endpoint)

    def envelope(self, number: int, msg: dict[str, Any], **override: Any) -> dict[str, Any]:
        """Message `number` of this stream; `override` replaces envelope keys (or adds one)."""
        env = {"src": self.src, "inc": self.inc, "sseq": number, "oldest": number, "ts": time.time(), "msg": msg}
        env.update(override)
        return env

    def send(self, env: dict[str, Any]) -> None:
        self.sock.send(msgpack.packb(env, use_bin_type=True))

    def answer(self, timeout_s: float = 10.0) -> list[Any]:
        """The next reply item (section 3.2: frames are arrays of reply items)."""
        if not self.sock.poll(int(timeout_s * 1000)):
            raise AssertionError("the hub did not answer")
        items = msgpack.unpackb(self.sock.recv(), raw=False)
        assert isinstance(items, list) and len(items) == 1, items
        return list(items[0])

    def ask(self, env: dict[str, Any]) -> list[Any]:
        self.send(env)
        return self.answer()

    def close(self) -> None:
        self.sock.close()


def heartbeat_map(actor: str, **fields: Any) -> dict[str, Any]:
    """A heartbeat as a plain msgpack map, built from the doc (not from our models)."""
    return {"type": "heartbeat", "v": 2, "actor": actor, "pid": os.getpid(), "started_at": "2025-01-01T00:00:00Z",
            "interval_s": 1.0, **fields}


def request(ctx: zmq.Context[Any], inst: Instance, req: dict[str, Any]) -> dict[str, Any]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(inst.settings.snapshot_endpoint)
    try:
        sock.send(msgpack.packb(req, use_bin_type=True))
        assert sock.poll(10_000), "no snapshot answer"
        return dict(msgpack.unpackb(sock.recv(), raw=False))
    finally:
        sock.close()


@pytest.fixture(scope="module")
def ctx() -> Iterator[zmq.Context[Any]]:
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.term()


_inc = iter(range(int(time.time() * 1e9), 1 << 64))


def client(ctx: zmq.Context[Any], inst: Instance, src: str = "router") -> Client:
    return Client(ctx, inst, src, next(_inc))


def test_an_extra_envelope_key_is_malformed_naming_the_key(shared_hub: Instance, ctx: zmq.Context[Any]) -> None:
    c = client(ctx, shared_hub)
    try:
        answer = c.ask(c.envelope(1, heartbeat_map("router"), colour="blue"))
    finally:
        c.close()
    assert answer[0] == "N" and answer[2] == "malformed" and answer[3] == "colour", answer


@pytest.mark.parametrize(("field", "value"), [("sseq", 0), ("oldest", 5), ("src", "x" * 129), ("ts", math.nan),
                                              ("inc", -1)])
def test_envelope_range_errors_are_malformed_naming_the_field(shared_hub: Instance, ctx: zmq.Context[Any],
                                                             field: str, value: Any) -> None:
    """3.1 gives each envelope key its range; 3.4: out of range is `malformed`, `field` names it."""
    c = client(ctx, shared_hub)
    try:
        answer = c.ask(c.envelope(1, heartbeat_map("router"), **{field: value}))
    finally:
        c.close()
    assert answer[0] == "N" and answer[2] == "malformed" and answer[3] == field, answer


def test_a_duplicate_is_answered_with_its_seq_only_when_newest(shared_hub: Instance, ctx: zmq.Context[Any]) -> None:
    """3.2: `["D", sseq, seq]` carries the commit's seq for the stream's newest message, else 0."""
    c = client(ctx, shared_hub)
    try:
        seqs = {}
        for sseq in (1, 2, 3):
            answer = c.ask(c.envelope(sseq, heartbeat_map("router")))
            assert answer[:2] == ["A", sseq], answer
            seqs[sseq] = answer[2]
        assert seqs[1] < seqs[2] < seqs[3]
        assert c.ask(c.envelope(3, heartbeat_map("router"))) == ["D", 3, seqs[3]]
        assert c.ask(c.envelope(1, heartbeat_map("router"), oldest=1)) == ["D", 1, 0]
    finally:
        c.close()


def test_each_connection_gets_the_answers_to_its_own_frames(shared_hub: Instance, ctx: zmq.Context[Any]) -> None:
    """1: one stream per ingest connection; the hub answers the connection a frame came on."""
    a, b = client(ctx, shared_hub, "router"), client(ctx, shared_hub, "executor")
    try:
        a.send(a.envelope(1, heartbeat_map("router")))
        b.send(b.envelope(1, heartbeat_map("executor")))
        got_a, got_b = a.answer(), b.answer()
        assert got_a[:2] == ["A", 1] and got_b[:2] == ["A", 1] and got_a[2] != got_b[2]
        assert not a.sock.poll(200) and not b.sock.poll(0), "an answer reached a connection that did not ask"
    finally:
        a.close()
        b.close()


def _journal_bodies(inst: Instance) -> dict[int, dict[str, Any]]:
    """Section 4: the journal holds the same envelope bytes as the updates body. The journal's
    record layout is `u32 length | u32 crc | u64 seq | payload` (actors/state_writer/journal.py)."""
    import struct

    out: dict[int, dict[str, Any]] = {}
    header = struct.Struct("<IIQ")
    for segment in sorted(Path(inst.settings.journal_path).glob("*.wal")):
        data = segment.read_bytes()
        pos = 0
        while pos + header.size <= len(data):
            length, _crc, seq = header.unpack_from(data, pos)
            out[seq] = msgpack.unpackb(data[pos + header.size:pos + header.size + length], raw=False)
            pos += header.size + length
    return out


def test_times_are_journaled_and_published_in_utc(shared_hub: Instance, ctx: zmq.Context[Any]) -> None:
    """2: a time with an offset is converted to UTC, a number is Unix time (milliseconds above
    2x10^10); the hub journals and publishes the validated form, every timestamp as `...Z`."""
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(shared_hub.settings.updates_endpoint)
    c = client(ctx, shared_hub)
    try:
        assert sub.poll(10_000), "no first frame on updates (section 6: a heartbeat answers a subscription)"
        answer = c.ask(c.envelope(1, heartbeat_map("router", ts=1_735_700_400_250,
                                                started_at="2025-01-01T05:00:00+02:00")))
        assert answer[0] == "A", answer
        seq = answer[2]
        published = None
        deadline = time.monotonic() + 10
        while published is None and time.monotonic() < deadline:
            if sub.poll(500):
                topic, seq_frame, body = sub.recv_multipart()
                if topic == b"heartbeat" and int.from_bytes(seq_frame, "big") == seq:
                    published = msgpack.unpackb(body, raw=False)
        assert published is not None, "the committed heartbeat was not published"
        journaled = _journal_bodies(shared_hub)[seq]
        for where, env in (("published", published), ("journaled", journaled)):
            msg = env["msg"]
            assert msg["ts"] == "2025-01-01T03:00:00.250000Z", (where, msg["ts"])  # milliseconds
            assert msg["started_at"] == "2025-01-01T03:00:00Z", (where, msg["started_at"])
            assert ISO_UTC.match(msg["ts"]) and isinstance(msg["interval_s"], float), (where, msg)
    finally:
        c.close()
        sub.close()


def test_snapshot_heartbeats_are_keyed_by_actor_with_their_seq(shared_hub: Instance, ctx: zmq.Context[Any]) -> None:
    """5: `heartbeats` maps actor -> its last heartbeat (plus `seq`); the actor is the sender's src."""
    c = client(ctx, shared_hub, "sync")
    try:
        answer = c.ask(c.envelope(1, heartbeat_map("sync", loops=7)))
    finally:
        c.close()
    state = request(ctx, shared_hub, {"op": "snapshot", "req": 1, "keys": ["heartbeats"]})["state"]
    beat = state["heartbeats"]["sync"]
    assert beat["actor"] == "sync" and beat["seq"] == answer[2] and beat["loops"] == 7


def test_status_fields_have_the_documented_types(shared_hub: Instance, ctx: zmq.Context[Any]) -> None:
    status = request(ctx, shared_hub, {"op": "status", "req": "s-1"})
    types = {"req": str, "seq": int, "epoch": int, "pid": int, "files_failing": bool, "keys": list,
             "journal_bytes": int, "streams": int}
    for key, kind in types.items():
        assert type(status[key]) is kind, (key, status[key])
    assert status["req"] == "s-1" and status["degraded"] is None
    assert all(type(k) is str for k in status["keys"]) and "heartbeats" in status["keys"]
    assert status["seq"] >= 0 and status["epoch"] > 0 and status["journal_bytes"] > 0


def test_curve_key_files_have_the_documented_format(shared_hub: Instance, tmp_path: Path) -> None:
    """security.md (linked from section 1): ZPL text, `metadata/producers`, `curve/public-key` of
    40 Z85 characters; the secret file adds `secret-key`, mode 0600."""
    shared_hub.run_cli("keys", "new", "host-b", "--dir", str(tmp_path), "--producers", "executor router",
                       check=True)
    public = (tmp_path / "host-b.key").read_text()
    secret_path = tmp_path / "host-b.key_secret"
    secret = secret_path.read_text()
    z85 = r'"([0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40})"'
    assert re.search(r'^metadata\n    producers = "executor router"$', public, re.M), public
    pub = re.search(rf"^curve\n    public-key = {z85}$", public, re.M)
    assert pub, public
    sec = re.search(rf"^    secret-key = {z85}$", secret, re.M)
    assert sec and f'public-key = "{pub.group(1)}"' in secret, secret
    assert secret_path.stat().st_mode & 0o777 == 0o600
    assert zmq.curve_public(sec.group(1).encode()) == pub.group(1).encode()
