"""Durability before acknowledgement, proven by ordering (issue 14).

A spy replaces os.fsync / os.fdatasync: it calls the real function, records which file it synced
and when it returned, and can hold the caller inside the sync. Holding the journal's sync shows the
writer sends no ACK and replaces no state file until the sync has returned; holding a state file's
sync shows the old file stays in place until then. The last test restarts a writer process from its
snapshot and resends an already-ACKed message: the de-duplication table must come back with it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.base.atomic_file import atomic_write
from actors.state_writer.journal import Journal
from actors.state_writer.server import StateWriter
from actors.state_writer.snapshot import list_snapshots
from bus.sender import Sender
from bus.subscriber import request_status
from tests.harness import instance
from tests.state_plane.helpers import RawClient, envelope
from tests.support.messages import position, positions

HOLD_TIMEOUT = 10.0


class SyncSpy:
    """Wraps os.fsync and os.fdatasync. Every call and return is logged (with the file's path);
    a sync whose path matches `hold_when` waits for `release` after the real sync returned."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.hold_when: Callable[[str], bool] = lambda _path: False
        self.held = threading.Event()
        self.release = threading.Event()
        self.real = {"fsync": os.fsync, "fdatasync": os.fdatasync}

    def note(self, event: str, path: str) -> None:
        with self.lock:
            self.log.append((event, path))

    def wrap(self, name: str) -> Callable[[int], None]:
        real = self.real[name]

        def spy(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            self.note(f"{name}-call", path)
            real(fd)
            if self.hold_when(path):
                self.held.set()
                assert self.release.wait(HOLD_TIMEOUT), "the test never released the held sync"
            self.note(f"{name}-return", path)

        return spy

    def index(self, event: str, match: Callable[[str], bool]) -> int:
        with self.lock:
            for i, (e, path) in enumerate(self.log):
                if e == event and match(path):
                    return i
        raise AssertionError(f"no {event} matching in {self.log}")


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncSpy]:
    s = SyncSpy()
    monkeypatch.setattr(os, "fsync", s.wrap("fsync"))
    monkeypatch.setattr(os, "fdatasync", s.wrap("fdatasync"))
    yield s
    s.release.set()


def test_atomic_write_replaces_only_after_the_temp_file_is_synced(tmp_path: Path, spy: SyncSpy) -> None:
    target = tmp_path / "doc.json"
    target.write_bytes(b"old")
    spy.hold_when = lambda path: ".doc.json.tmp." in path
    writer = threading.Thread(target=atomic_write, args=(target, b"new"))
    writer.start()
    assert spy.held.wait(HOLD_TIMEOUT), "atomic_write never synced its temp file"
    # Held inside the temp file's sync: the reader must still see the old file, whole.
    assert target.read_bytes() == b"old"
    spy.release.set()
    writer.join(HOLD_TIMEOUT)
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o644
    # The directory is synced after the rename (the rename itself must be durable).
    assert spy.index("fsync-return", lambda p: ".tmp." in p) < spy.index("fsync-call", lambda p: p == str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_journal_append_returns_only_after_its_sync(tmp_path: Path, spy: SyncSpy) -> None:
    journal = Journal(tmp_path / "journal")
    journal.open_for_append()
    spy.hold_when = lambda path: path.endswith(".wal")
    done = threading.Event()

    def append() -> None:
        journal.append([(1, b"one"), (2, b"two")])
        done.set()

    thread = threading.Thread(target=append)
    thread.start()
    assert spy.held.wait(HOLD_TIMEOUT), "the journal append never synced its segment"
    assert not done.is_set() and journal.last_seq == 0  # still inside the sync: not durable yet
    spy.release.set()
    thread.join(HOLD_TIMEOUT)
    assert done.is_set() and journal.last_seq == 2
    journal.close()
    assert [(r.seq, r.payload) for r in Journal(tmp_path / "journal").replay()] == [(1, b"one"), (2, b"two")]


def test_writer_acks_and_writes_files_only_after_the_journal_sync(tmp_path: Path, spy: SyncSpy) -> None:
    with instance(tmp_path, "[writer]\ntick_ms = 20\n") as inst:
        ctx = zmq.Context()
        writer = StateWriter(inst.settings, hooks=[], context=ctx)
        writer.start(serve_metrics=False)
        replies: list[Any] = []
        real_reply = writer._reply

        def reply_spy(batch: dict[bytes, list[Any]]) -> None:
            spy.note("reply", repr(batch))
            replies.append(batch)
            real_reply(batch)

        writer._reply = reply_spy  # type: ignore[method-assign]
        state_file = inst.state_dir / "positions_state.json"
        replaced: list[int] = []
        real_replace = os.replace

        def replace_spy(src: Any, dst: Any) -> None:
            real_replace(src, dst)
            if str(dst) == str(state_file):
                spy.note("replace", str(dst))
                replaced.append(1)

        stop = threading.Event()
        loop = threading.Thread(target=writer.run, args=(stop,))
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(os, "replace", replace_spy)
                loop.start()
                with Sender(inst.settings, "executor", context=ctx) as sender:
                    spy.hold_when = lambda path: path.endswith(".wal")
                    future = sender.submit(positions(position(realized=123.0)))
                    assert spy.held.wait(HOLD_TIMEOUT), "the writer never synced its journal"
                    hold_at = len(spy.log)
                    # The writer thread is inside the journal's sync: nothing may have been answered.
                    assert not replies and not future.done()
                    spy.hold_when = lambda _path: False
                    spy.release.set()
                    seq = future.result(timeout=HOLD_TIMEOUT)
                    inst.wait_for(lambda: _realized(state_file) == [123.0], 10, "the state file with the message")
            sync_return = spy.index("fdatasync-return", lambda p: p.endswith(".wal"))
            assert sync_return >= hold_at
            first_reply = spy.index("reply", lambda _p: True)
            assert first_reply > sync_return
            with spy.lock:
                later = [i for i, (e, _p) in enumerate(spy.log) if e == "replace" and i >= hold_at - 1]
            assert later and min(later) > sync_return, spy.log
            assert seq >= 1
        finally:
            spy.hold_when = lambda _path: False  # the shutdown's own syncs must not wait on a failed test
            spy.release.set()
            stop.set()
            loop.join(timeout=30)
            writer.shutdown()
            ctx.term()


def test_resent_acked_message_after_a_restart_from_snapshot_applies_once(tmp_path: Path) -> None:
    """The writer restores its (source, src_seq) table from the snapshot: a resend of a message
    ACKed before the restart gets its first seq back and is neither journaled nor applied again."""
    with instance(tmp_path) as inst:
        inst.start_writer()
        first = envelope(positions(position(realized=1.0)).to_wire(), stream="restart", sseq=1)
        second = envelope(positions(position(realized=2.0)).to_wire(), stream="restart", sseq=2)
        raw = RawClient(inst)
        try:
            ack1 = raw.ask(first)
            ack2 = raw.ask(second)
        finally:
            raw.close()
        assert ack1[0] == "A" and ack2[0] == "A", (ack1, ack2)
        assert inst.kill("state_writer", signal.SIGTERM) == 0
        assert list_snapshots(inst.settings.journal_path), "a clean stop writes a snapshot"
        seq_before = request_status_after_restart(inst)
        raw = RawClient(inst)
        try:
            again = raw.ask(first)
        finally:
            raw.close()
        # A duplicate (seq 0: older than the newest seq the table keeps for the stream), not a new ACK.
        assert again[:2] == ["D", 1] and again[2] in (0, ack1[2]), (again, ack1)
        assert request_status(inst.settings)["seq"] == seq_before  # nothing new committed
        assert _realized(inst.state_dir / "positions_state.json") == [2.0]


def _realized(path: Path) -> list[float] | None:
    try:
        return [row["realized_pnl"] for row in json.loads(path.read_bytes())["positions"]]
    except FileNotFoundError:
        return None


def request_status_after_restart(inst: Any) -> int:
    inst.start_writer()
    return int(request_status(inst.settings)["seq"])


def test_atomic_write_continues_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))  # a slow pipe-like fd
    target = tmp_path / "doc.json"
    atomic_write(target, b"0123456789")
    assert target.read_bytes() == b"0123456789"


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    target.mkdir()  # os.replace of a file onto a directory fails
    with pytest.raises(IsADirectoryError):
        atomic_write(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"] and target.is_dir()
