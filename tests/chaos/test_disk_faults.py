"""The state directory's filesystem full or read-only, for real (tmpfs, loop-mounted ext4).

state_dir, journal_dir and the positions database live on one small filesystem, as they do
under `$V7_HOME/logs`. While it refuses writes the writer ACKs nothing (senders keep their
outboxes), says why (status, heartbeat, log, `v7_writer_degraded`, error counters), never
leaves a partial state file and keeps serving; when the condition clears it resumes without
anyone restarting it, and everything it had ACKed is still there exactly once.

tests/state_plane/test_files_and_faults.py covers the same path with RLIMIT_FSIZE (EFBIG on
the journal only); here the whole filesystem refuses: journal, database and state files.
"""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from bus.messages import Message, OrderFilled
from bus.subscriber import SnapshotError, request_status
from tests.chaos.audit import db_rows, integrity, journal, temp_files
from tests.chaos.fs import FsUnavailable, ext4_loop, fill_up, tmpfs
from tests.chaos.reader import ReaderThread
from tests.harness import Instance, instance
from tests.producers import Producers
from tests.support.messages import position, positions
from tests.support.metrics import metric

DISK_BYTES = 8 << 20
ACCOUNT = "diskfault"


def _toml(data: Path) -> str:
    return (f'state_dir = "{data / "state"}"\njournal_dir = "{data / "journal"}"\n'
            f'db_url = "sqlite:///{data / "positions.db"}"\n'
            "[bus]\nheartbeat_s = 0.2\n[writer]\ntick_ms = 50\nsnapshot_every_s = 3600\n")


def _message(i: int) -> Message:
    """Even: a positions document whose realized_pnl is the marker; odd: a fill on its own scope."""
    if i % 2 == 0:
        return positions(position(realized=float(i)))
    return OrderFilled(mode="SIM", trade_id=f"t{i}", order_id=f"o{i}", intent_id=f"i{i}", account=ACCOUNT,
                       symbol="BTCUSDT",
                side="BUY", qty=0.001, price=60000.0, liquidity="taker")


def _status(inst: Instance) -> dict | None:
    try:
        return request_status(inst.settings, timeout_s=1.0)
    except SnapshotError:
        return None


def _degraded(inst: Instance) -> str | None:
    status = _status(inst)
    return status["degraded"] if status else None


def _audit(inst: Instance, data: Path, acked: dict[int, int]) -> None:
    """Every ACKed message is in the journal exactly once at the seq its ACK named, and in effect."""
    records = journal(data / "journal")
    assert [r.seq for r in records] == list(range(1, records[-1].seq + 1))
    where: dict[int, list[int]] = {}
    for r in records:
        if r.msg["type"] == "positions_state":
            where.setdefault(int(r.msg["positions"][0]["realized_pnl"]), []).append(r.seq)
        elif r.msg["type"] == "order_filled":
            where.setdefault(int(r.msg["trade_id"][1:]), []).append(r.seq)
    assert {i: seqs for i, seqs in where.items() if len(seqs) != 1} == {}, "committed more than once"
    assert set(where) == set(acked)
    assert {i: (seq, where[i][0]) for i, seq in acked.items() if seq and seq != where[i][0]} == {}
    last_positions = max(i for i in acked if i % 2 == 0)
    doc = json.loads((inst.state_dir / "positions_state.json").read_text())
    assert doc["positions"][0]["realized_pnl"] == float(last_positions)
    db = data / "positions.db"
    fills = db_rows(db, "SELECT trade_id FROM fill_record WHERE account = ?", ACCOUNT)
    assert sorted(int(t[1:]) for (t,) in fills) == sorted(i for i in acked if i % 2 == 1)
    qty = db_rows(db, "SELECT qty FROM open_position WHERE account = ?", ACCOUNT)
    assert qty and abs(qty[0][0] - 0.001 * len(fills)) < 1e-9
    assert integrity(db) == "ok"
    assert temp_files(inst.state_dir) == []


def _wait_file(inst: Instance, realized: float) -> None:
    def shows() -> bool:
        try:
            doc = json.loads((inst.state_dir / "positions_state.json").read_text())
        except FileNotFoundError:
            return False
        return doc["positions"][0]["realized_pnl"] == realized

    inst.wait_for(shows, 20, f"positions_state.json to show realized_pnl {realized}")


def _stops_acking(futures: dict[int, Future[int]], quiet_s: float = 2.0) -> dict[int, Future[int]]:
    """Wait until no future has been answered for `quiet_s`; the ones still unanswered."""
    done = -1
    while done != (now := sum(f.done() for f in futures.values())):
        done = now
        time.sleep(quiet_s)
    return {i: f for i, f in futures.items() if not f.done()}


def _send(sender: Producers, numbers: range) -> dict[int, Future[int]]:
    return {i: sender.submit(_message(i)) for i in numbers}


def test_full_disk_stops_acks_keeps_files_and_resumes_by_itself(tmp_path: Path) -> None:
    try:
        mounted = tmpfs(tmp_path / "data", DISK_BYTES)
        data = mounted.__enter__()
    except FsUnavailable as exc:
        pytest.skip(f"no small filesystem: {exc}")
    try:
        with instance(tmp_path, _toml(data)) as inst:
            inst.start_writer()
            reader = ReaderThread(inst.state_dir)
            reader.start()
            sender = Producers(inst.settings, resend_after_s=0.5)
            try:
                acked = {i: f.result(timeout=30) for i, f in _send(sender, range(40)).items()}
                _wait_file(inst, 38.0)
                fill_up(data)
                during = _send(sender, range(40, 60))
                inst.wait_for(lambda: _degraded(inst) is not None, 30, "the writer to report the full disk")
                # A few may still be ACKed: a journal append that fits in the file's last page is
                # durable. From then on nothing more is answered.
                held = _stops_acking(during)
                assert sender.outbox_depth == len(held) > 0
                reason = _degraded(inst)
                assert reason in {"ENOSPC", "store:SQLITE_FULL"}, reason
                assert metric(inst, "v7_writer_degraded") == 1
                log = inst.logs("state_writer")
                assert "journal append failed (ENOSPC" in log or "commit hook failed" in log
                assert temp_files(inst.state_dir) == []
                # Restarted while the disk is still full (what supervisord does after a crash):
                # it comes up, serves status, and still ACKs nothing.
                inst.kill("state_writer", signal.SIGKILL)
                proc = inst.start_writer(timeout=30)
                inst.wait_for(lambda: _degraded(inst) is not None, 30, "the restarted writer to report the disk")
                assert proc.poll() is None and not any(f.done() for f in held.values())
                # The condition clears; nobody touches the writer.
                (data / "ballast").unlink()
                cleared = time.monotonic()
                acked.update({i: f.result(timeout=60) for i, f in during.items()})
                recovery_s = time.monotonic() - cleared
                assert _degraded(inst) is None and metric(inst, "v7_writer_degraded") == 0
            finally:
                sender.close(flush_timeout=5)
                reads = reader.stop()
            _wait_file(inst, 58.0)
            _audit(inst, data, acked)
            assert reads.violations == 0, reads.examples[:5]
            assert reads.reads > 20
            print(f"\ndisk full ({reason}): {len(held)} messages held unACKed across a restart; all ACKed "
                  f"{recovery_s:.2f}s after space came back; {reads.reads} file reads, {reads.violations} bad")
            inst.stop_all()
    finally:
        mounted.__exit__(None, None, None)


def test_read_only_disk_stops_acks_and_loses_nothing(tmp_path: Path) -> None:
    try:
        mounted = ext4_loop(tmp_path / "disk.img", tmp_path / "data", 32 << 20)
        fs = mounted.__enter__()
    except FsUnavailable as exc:
        pytest.skip(f"no read-only-able filesystem: {exc}")
    data = fs.mountpoint
    try:
        with instance(tmp_path, _toml(data)) as inst:
            inst.start_writer()
            reader = ReaderThread(inst.state_dir)
            reader.start()
            sender = Producers(inst.settings, resend_after_s=0.5)
            try:
                acked = {i: f.result(timeout=30) for i, f in _send(sender, range(40)).items()}
                _wait_file(inst, 38.0)
                fs.make_read_only()
                assert fs.is_read_only()
                during = _send(sender, range(40, 60))
                inst.wait_for(lambda: _degraded(inst) == "EROFS", 30, "the writer to report the read-only disk")
                held = _stops_acking(during)
                assert len(held) == 20, "ACKed while the disk is read-only"
                assert metric(inst, "v7_writer_journal_errors_total", reason="EROFS") >= 1
                assert "journal append failed (EROFS" in inst.logs("state_writer")
                # The files keep their last good version. A temp file caught by the error cannot be
                # unlinked on a read-only disk; readers never open it, the next start removes it.
                # A filesystem the kernel turned read-only cannot be made writable under an open
                # file: the operator stops the writer, repairs, mounts, starts it again.
                stopping = time.monotonic()
                assert inst.kill("state_writer", signal.SIGTERM, wait=30) == 0
                stop_s = time.monotonic() - stopping
                reads = reader.stop()
                fs.repair()
                inst.start_writer(timeout=30)
                restarted = time.monotonic()
                acked.update({i: f.result(timeout=60) for i, f in during.items()})
                resume_s = time.monotonic() - restarted
            finally:
                sender.close(flush_timeout=5)
                reads = reader.stop()
            _wait_file(inst, 58.0)
            _audit(inst, data, acked)
            assert reads.violations == 0, reads.examples[:5]
            print(f"\nread-only disk (EROFS): 20 messages held unACKed; SIGTERM stop took {stop_s:.2f}s; "
                  f"all ACKed {resume_s:.2f}s after the restart; {reads.reads} file reads, {reads.violations} bad")
            inst.stop_all()
    finally:
        mounted.__exit__(None, None, None)
