"""The journal in-process (the process-level cases are in test_journal.py): segments, torn tails,
damage, compaction. In-process so that `make mutation` can kill journal mutants with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.state_writer.journal import HEADER, Journal, JournalCorrupt, encode_record


def _journal(tmp_path: Path, segment_bytes: int = 1 << 20) -> Journal:
    j = Journal(tmp_path / "j", segment_bytes)
    j.open_for_append()
    return j


def test_segments_rotate_and_replay_in_order(tmp_path: Path) -> None:
    j = _journal(tmp_path, segment_bytes=64)
    for seq in range(1, 8):
        j.append([(seq, b"x" * 40)])
    j.close()
    names = [p.name for p in j.segments()]
    assert len(names) > 1 and names[0] == f"{1:020d}.wal"
    again = Journal(tmp_path / "j", 64)
    assert [r.seq for r in again.replay()] == list(range(1, 8))
    assert [r.seq for r in again.replay(after_seq=5)] == [6, 7]
    assert [r.seq for r in again.records(after_seq=5)] == [6, 7]
    assert again.scan_last_seq() == 7
    assert again.size_bytes() == sum(p.stat().st_size for p in again.segments())


def test_torn_tail_is_cut_and_counted(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.append([(1, b"one"), (2, b"two")])
    j.close()
    [segment] = j.segments()
    whole = segment.stat().st_size
    with segment.open("ab") as fh:
        fh.write(encode_record(3, b"three")[:-2])  # crash mid-write
    again = Journal(tmp_path / "j")
    assert [r.seq for r in again.records()] == [1, 2]  # read-only: stops, cuts nothing
    assert segment.stat().st_size == whole + len(encode_record(3, b"three")) - 2
    assert [r.payload for r in again.replay()] == [b"one", b"two"]
    assert segment.stat().st_size == whole and again.truncated_bytes == len(encode_record(3, b"three")) - 2
    assert again.last_seq == 2
    again.open_for_append()
    again.append([(3, b"three")])
    again.close()
    assert [r.seq for r in Journal(tmp_path / "j").replay()] == [1, 2, 3]


def test_damage_before_a_valid_record_stops_start_up(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.append([(1, b"one"), (2, b"two"), (3, b"three")])
    j.close()
    [segment] = j.segments()
    data = bytearray(segment.read_bytes())
    data[HEADER.size] ^= 0xFF  # first payload byte: checksum mismatch, valid records follow
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="valid record follows"):
        list(Journal(tmp_path / "j").replay())
    assert list(Journal(tmp_path / "j").records()) == []  # the reader stops quietly


def test_damage_in_an_older_segment_stops_start_up(tmp_path: Path) -> None:
    j = _journal(tmp_path, segment_bytes=32)
    for seq in range(1, 4):
        j.append([(seq, b"y" * 30)])
    j.close()
    first = j.segments()[0]
    first.write_bytes(first.read_bytes()[:-1])
    with pytest.raises(JournalCorrupt, match="short record"):
        list(Journal(tmp_path / "j", 32).replay())


def test_compact_removes_only_segments_wholly_covered(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.append([(1, b"a"), (2, b"b")])
    j.rotate()
    j.append([(3, b"c")])
    j.rotate()
    j.append([(4, b"d")])
    assert [int(p.stem) for p in j.segments()] == [1, 3, 4]
    assert j.compact(snapshot_seq=1) == 0  # seq 2 is still needed
    assert j.compact(snapshot_seq=2) == 1
    assert [int(p.stem) for p in j.segments()] == [3, 4]
    assert j.compact(snapshot_seq=10) == 1  # the last segment always stays
    assert [int(p.stem) for p in j.segments()] == [4]
    j.close()
    assert [r.seq for r in Journal(tmp_path / "j").replay(after_seq=3)] == [4]


def test_failed_append_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    j = _journal(tmp_path)
    j.append([(1, b"one")])
    [segment] = j.segments()
    size = segment.stat().st_size

    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", full)
    with pytest.raises(OSError):
        j.append([(2, b"two")])
    monkeypatch.undo()
    assert segment.stat().st_size == size and j.last_seq == 1
    j.append([(2, b"two")])
    j.close()
    assert [r.seq for r in Journal(tmp_path / "j").replay()] == [1, 2]
