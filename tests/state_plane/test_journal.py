"""The journal on real files: torn tails, damage, rotation and compaction behind snapshots."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path

import pytest
import zmq

from actors.state_writer.journal import Journal, JournalCorrupt, encode_record
from actors.state_writer.server import StateWriter
from actors.state_writer.snapshot import list_snapshots, snapshot_seq
from bus import codec
from bus.sender import Sender
from bus.subscriber import request_status
from tests.harness import instance
from tests.support.messages import position, positions
from tests.support.metrics import metric


def _journal(path: Path, count: int, segment_bytes: int = 64 << 20) -> Journal:
    j = Journal(path, segment_bytes)
    j.open_for_append()
    for seq in range(1, count + 1):
        j.append([(seq, f"payload-{seq}".encode() * 10)])
    j.close()
    return j


def test_torn_tail_is_cut_and_appending_goes_on(tmp_path: Path) -> None:
    _journal(tmp_path, 5)
    seg = Journal(tmp_path).segments()[-1]
    size = seg.stat().st_size
    with seg.open("ab") as fh:
        fh.write(encode_record(6, b"never fsynced" * 10)[:17])  # a crash mid-write
    j = Journal(tmp_path)
    assert [r.seq for r in j.replay()] == [1, 2, 3, 4, 5]
    assert seg.stat().st_size == size and j.truncated_bytes == 17
    j.open_for_append()
    j.append([(6, b"six")])
    j.close()
    assert [r.seq for r in Journal(tmp_path).replay()] == [1, 2, 3, 4, 5, 6]


def test_damage_before_valid_records_is_refused_not_cut(tmp_path: Path) -> None:
    _journal(tmp_path, 5)
    seg = Journal(tmp_path).segments()[-1]
    data = bytearray(seg.read_bytes())
    data[len(encode_record(1, b"payload-1" * 10)) + 20] ^= 0xFF  # inside record 2, records 3..5 intact
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="valid record follows"):
        list(Journal(tmp_path).replay())
    assert seg.read_bytes() == bytes(data)  # nothing was cut


def test_damage_in_an_older_segment_is_refused(tmp_path: Path) -> None:
    _journal(tmp_path, 100, segment_bytes=4096)
    segments = Journal(tmp_path).segments()
    assert len(segments) >= 3
    first = segments[0]
    first.write_bytes(first.read_bytes()[:-5])
    with pytest.raises(JournalCorrupt):
        list(Journal(tmp_path).replay())


def test_writer_refuses_to_start_on_a_damaged_journal(tmp_path: Path) -> None:
    with instance(tmp_path) as inst:
        inst.start_writer()
        with Sender(inst.settings, "executor") as sender:
            for i in range(5):
                sender.send_and_wait(positions(position(realized=float(i))), timeout=10)
        inst.kill("state_writer", signal.SIGKILL)
        seg = Journal(inst.settings.journal_path).segments()[-1]
        data = bytearray(seg.read_bytes())
        data[30] ^= 0xFF  # inside the first record
        seg.write_bytes(bytes(data))
        proc = inst.start("state_writer")
        assert proc.wait(timeout=30) == 5
        assert "journal corrupt" in inst.logs("state_writer")


def test_torn_tail_recovery_in_a_real_writer(tmp_path: Path) -> None:
    with instance(tmp_path) as inst:
        inst.start_writer()
        with Sender(inst.settings, "executor") as sender:
            for i in range(20):
                seq = sender.send_and_wait(positions(position(realized=float(i))), timeout=10)
        inst.kill("state_writer", signal.SIGKILL)
        seg = Journal(inst.settings.journal_path).segments()[-1]
        with seg.open("ab") as fh:
            fh.write(encode_record(seq + 1, b"x" * 300)[:123])
        inst.start_writer()
        assert request_status(inst.settings)["seq"] == seq
        assert metric(inst, "v7_writer_journal_truncated_bytes") == 123
        state = json.loads((inst.state_dir / "positions_state.json").read_text())
        assert state["positions"][0]["realized_pnl"] == 19.0


def _wal_bytes(journal_dir: Path) -> int:
    total = 0
    for segment in journal_dir.glob("*.wal"):
        with contextlib.suppress(FileNotFoundError):  # compacted away between the listing and the stat
            total += segment.stat().st_size
    return total


def test_journal_growth_is_bounded_by_compaction(tmp_path: Path) -> None:
    """A writer without commit hooks keeps about two snapshot intervals of journal.

    In-process and hook-free on purpose: the positions store, a hook, may hold the journal
    back for its own replay (up to its checkpoint interval), which would hide the bound here.
    """
    toml = "[writer]\nsnapshot_every_messages = 200\njournal_segment_bytes = 16384\ntick_ms = 20\n"
    with instance(tmp_path, toml) as inst:
        ctx = zmq.Context()
        writer = StateWriter(inst.settings, hooks=[], context=ctx)
        writer.start(serve_metrics=False)
        stop = threading.Event()
        loop = threading.Thread(target=writer.run, args=(stop,))
        loop.start()
        journal_dir = inst.settings.journal_path
        peak_bytes = 0
        try:
            with Sender(inst.settings, "executor", context=ctx) as sender:
                for batch in range(24):
                    futures = [sender.submit(positions(position(realized=float(batch * 250 + i))))
                               for i in range(250)]
                    last = max(f.result(timeout=30) for f in futures)
                    peak_bytes = max(peak_bytes, _wal_bytes(journal_dir))
        finally:
            stop.set()
            loop.join(timeout=30)
            writer.shutdown()
            ctx.term()
        assert last == 6000
        record = len(encode_record(1, codec.encode_envelope("grower", 1, 1, positions(position()))))
        total_written = last * record
        # The journal keeps a few snapshot intervals of records (snapshots come at ticks, so an
        # interval can stretch under load: about a third of 3000 was seen), never all 6000.
        assert peak_bytes < total_written / 3, (peak_bytes, total_written)
        assert len(list(journal_dir.glob("snapshot-*.msgpack"))) <= 2


def test_restart_from_snapshot_plus_journal_tail(tmp_path: Path) -> None:
    toml = "[writer]\nsnapshot_every_messages = 200\ntick_ms = 20\n"
    with instance(tmp_path, toml) as inst:
        inst.start_writer()
        with Sender(inst.settings, "executor") as sender:
            futures = [sender.submit(positions(position(realized=float(i)))) for i in range(1000)]
            max(f.result(timeout=30) for f in futures)
            inst.wait_for(lambda: metric(inst, "v7_writer_snapshots_written_total") >= 1, 10, "a snapshot")
            # Fewer than snapshot_every_messages more: these live only in the journal tail.
            futures = [sender.submit(positions(position(realized=float(1000 + i)))) for i in range(150)]
            last = max(f.result(timeout=30) for f in futures)
        inst.kill("state_writer", signal.SIGKILL)
        newest = max(snapshot_seq(p) for p in list_snapshots(inst.settings.journal_path))
        inst.start_writer()
        assert request_status(inst.settings)["seq"] == last
        # Recovery loaded the newest snapshot and replayed only the journal after it.
        assert 0 < newest <= last
        assert metric(inst, "v7_writer_replayed_messages") == last - newest
        state = json.loads((inst.state_dir / "positions_state.json").read_text())
        assert state["positions"][0]["realized_pnl"] == 1149.0
        with Sender(inst.settings, "executor") as sender:
            assert sender.send_and_wait(positions(position()), timeout=10) == last + 1
