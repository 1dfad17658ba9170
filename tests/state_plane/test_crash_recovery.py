"""kill -9 of the state writer in the middle of a stream: nothing ACKed is lost.

Three senders stream durable messages (pipelined), a reader polls the state files the whole
time, the writer is killed with SIGKILL twice and restarted. Afterwards the journal is read
back: every message is committed exactly once, every ACK names the seq it really got, the
seq is gap-free across the restarts, and the reader never saw a torn or invalid file.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import Future

import msgpack
import pytest

from actors.state_writer.journal import Journal
from bus.messages import STATE_DOCUMENTS
from bus.sender import Sender
from bus.subscriber import request_status
from tests.harness import instance
from tests.support.messages import position, positions, sample_ledger

WINDOW = 64  # durable messages in flight per sender


class FileReader(threading.Thread):
    """Polls every state file as fast as it can; any unreadable or invalid read is recorded."""

    def __init__(self, state_dir) -> None:
        super().__init__(daemon=True)
        self.state_dir = state_dir
        self.stop = threading.Event()
        self.reads = 0
        self.bad: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for key, model in STATE_DOCUMENTS.items():
                path = self.state_dir / f"{key}.json"
                try:
                    raw = path.read_bytes()
                except FileNotFoundError:
                    continue
                try:
                    model.model_validate(json.loads(raw))
                    self.reads += 1
                except ValueError as exc:
                    self.bad.append(f"{key}: {exc!r} in {raw[:200]!r}")


def _stream(sender: Sender, ident: int, count: int, out: dict[float, Future[int]]) -> None:
    inflight: list[Future[int]] = []
    for i in range(count):
        marker = ident * 1_000_000 + i
        msg = sample_ledger(1) if i % 10 == 9 else positions(position(realized=float(marker)))
        future = sender.submit(msg)
        if i % 10 != 9:
            out[float(marker)] = future
        inflight.append(future)
        if len(inflight) >= WINDOW:
            inflight.pop(0).result(timeout=60)


def test_kill_9_mid_stream_loses_nothing_acked(tmp_path) -> None:
    _kill_9_run(tmp_path, senders=3, per_sender=1200, kills=2)


@pytest.mark.slow
def test_kill_9_soak(tmp_path) -> None:
    """`make chaos`: more senders, more messages, a kill -9 every few hundred ACKs."""
    _kill_9_run(tmp_path, senders=5, per_sender=4000, kills=12)


def _kill_9_run(tmp_path, senders: int, per_sender: int, kills: int) -> None:
    total = senders * per_sender
    # No snapshot or compaction during the run, so the whole journal can be audited afterwards.
    toml = "[writer]\ntick_ms = 20\nsnapshot_every_s = 3600\nsnapshot_every_messages = 1000000\n"
    with instance(tmp_path, toml) as inst:
        inst.start_writer()
        reader = FileReader(inst.state_dir)
        reader.start()
        clients = [Sender(inst.settings, "executor", resend_after_s=0.5) for n in range(senders)]
        futures: dict[float, Future[int]] = {}
        threads = [threading.Thread(target=_stream, args=(s, n + 1, per_sender, futures))
                   for n, s in enumerate(clients)]
        for t in threads:
            t.start()
        try:
            for kill_at in (total * (k + 1) // (kills + 2) for k in range(kills)):
                inst.wait_for(lambda k=kill_at: sum(f.done() for f in list(futures.values())) >= k, 60,
                              f"{kill_at} ACKs")
                seq_before = request_status(inst.settings, timeout_s=5)["seq"]
                inst.kill("state_writer", signal.SIGKILL)
                time.sleep(0.3)  # senders keep queueing while the hub is down
                inst.start_writer()
                assert request_status(inst.settings)["seq"] >= seq_before  # the seq continues
            for t in threads:
                t.join(timeout=120)
            acked = {marker: f.result(timeout=60) for marker, f in futures.items()}
        finally:
            for client in clients:
                client.close(flush_timeout=10)
            reader.stop.set()
            reader.join(timeout=10)
        final_seq = request_status(inst.settings)["seq"]
        # Audit the journal: gap-free seqs, every message exactly once, ACKs name the true seq.
        seen: dict[tuple[str, int, int], int] = {}
        marker_seq: dict[float, int] = {}
        last_positions = None
        records = list(Journal(inst.settings.journal_path).records())
        assert [r.seq for r in records] == list(range(1, final_seq + 1))
        for record in records:
            env = msgpack.unpackb(record.payload, raw=False)
            ident = (env["src"], env["inc"], env["sseq"])
            assert ident not in seen, f"{ident} committed twice (seq {seen[ident]} and {record.seq})"
            seen[ident] = record.seq
            if env["msg"]["type"] == "positions_state":
                marker = env["msg"]["positions"][0]["realized_pnl"]
                marker_seq[marker] = record.seq
                last_positions = marker
        assert len(seen) == total
        assert set(marker_seq) == set(acked)
        wrong = {m: (seq, marker_seq[m]) for m, seq in acked.items() if seq and seq != marker_seq[m]}
        assert not wrong, f"ACKs naming the wrong seq: {list(wrong.items())[:5]}"
        # The file comes to show the last committed positions message (it trails by a tick);
        # the reader never saw a bad file.
        path = inst.state_dir / "positions_state.json"
        inst.wait_for(lambda: json.loads(path.read_text())["positions"][0]["realized_pnl"] == last_positions,
                      10, "positions_state.json to show the last commit")
        assert not reader.bad, reader.bad[:3]
        assert reader.reads > 100
        inst.kill("state_writer", signal.SIGTERM)
