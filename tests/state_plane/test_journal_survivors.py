"""The journal's reading and damage checks pinned exactly (offsets, reasons, messages, log lines),
in-process so that `make mutation` can kill the mutants test_journal_unit.py leaves."""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path

import pytest

from actors.state_writer.journal import (
    HEADER,
    MAX_RECORD,
    SEQ,
    SUFFIX,
    Journal,
    JournalCorrupt,
    Record,
    _valid_record_after,
    encode_record,
    record_header,
)


def _write(path: Path, first_seq: int, data: bytes) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    segment = path / f"{first_seq:020d}.wal"
    segment.write_bytes(data)
    return segment


def _recs(*seqs: int) -> bytes:
    return b"".join(encode_record(s, f"p{s}".encode()) for s in seqs)


def test_record_layout() -> None:
    header = record_header(5, b"abc")
    assert HEADER.size == 16 and SEQ.size == 8 and SUFFIX == ".wal" and MAX_RECORD == 256 << 20
    length, crc, seq = HEADER.unpack(header)
    assert (length, seq) == (3, 5)
    assert crc == zlib.crc32(b"abc", zlib.crc32(SEQ.pack(5)))
    assert header == (3).to_bytes(4, "little") + crc.to_bytes(4, "little") + (5).to_bytes(8, "little")
    assert encode_record(5, b"abc") == header + b"abc"
    assert Record(1, b"x") == Record(1, b"x")


def test_segments_only_wal_with_digit_names(tmp_path: Path) -> None:
    d = tmp_path / "j"
    _write(d, 1, _recs(1))
    (d / "00000000000000000002.tmp").write_bytes(b"")
    (d / "abc.wal").write_bytes(b"")
    (d / "notes").write_bytes(b"")
    assert [p.name for p in Journal(d).segments()] == [f"{1:020d}.wal"]


def test_empty_journal(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    assert list(j.replay()) == [] and list(j.records()) == [] and j.scan_last_seq() == 0
    assert j.size_bytes() == 0 and j.truncated_bytes == 0
    j.append([])
    assert j.segments() == []
    j.open_for_append()
    assert [p.name for p in j.segments()] == [f"{1:020d}.wal"]
    j.close()
    j.close()  # twice is fine


@pytest.mark.parametrize(("tail", "reason"), [
    (b"\x01" * (HEADER.size - 1), "short header"),
    (encode_record(3, b"three")[:-1], "short record"),
    (encode_record(3, b"three")[:HEADER.size], "short record"),
    (encode_record(3, b"three")[:-1] + b"X", "checksum mismatch"),
    (HEADER.pack(MAX_RECORD + 1, 0, 3), "short record"),
])
def test_torn_tail_reasons_logged_and_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture, tail: bytes,
                                          reason: str) -> None:
    d = tmp_path / "j"
    good = _recs(1, 2)
    segment = _write(d, 1, good + tail)
    j = Journal(d)
    with caplog.at_level(logging.WARNING, logger="actors.state_writer.journal"):
        assert [(r.seq, r.payload) for r in j.replay()] == [(1, b"p1"), (2, b"p2")]
    assert segment.read_bytes() == good
    assert j.truncated_bytes == len(tail) and j.last_seq == 2
    assert caplog.messages == [f"journal {segment.name}: cutting torn tail at {len(good)} ({reason}, "
                               f"{len(tail)} bytes)"]


def test_exactly_max_record_is_not_refused_by_length(tmp_path: Path) -> None:
    # a header claiming exactly MAX_RECORD bytes with fewer present is short, not oversized: same reason
    d = tmp_path / "j"
    _write(d, 1, _recs(1) + HEADER.pack(MAX_RECORD, 0, 2) + b"x")
    j = Journal(d)
    assert [r.seq for r in j.replay()] == [1]


def test_torn_tails_in_several_segments_only_last_is_cut(tmp_path: Path) -> None:
    d = tmp_path / "j"
    _write(d, 1, _recs(1, 2))
    last = _write(d, 3, _recs(3) + b"\x00\x01")
    j = Journal(d)
    assert [r.seq for r in j.replay()] == [1, 2, 3]
    assert j.truncated_bytes == 2 and last.read_bytes() == _recs(3)
    # a second torn replay accumulates
    last.write_bytes(_recs(3) + b"\x00\x01\x02")
    assert [r.seq for r in j.replay()] == [1, 2, 3]
    assert j.truncated_bytes == 5


def test_corrupt_older_segment_message(tmp_path: Path) -> None:
    d = tmp_path / "j"
    first = _write(d, 1, _recs(1, 2)[:-1])
    _write(d, 3, _recs(3))
    with pytest.raises(JournalCorrupt) as info:
        list(Journal(d).replay())
    assert str(info.value) == f"{first} at offset {len(_recs(1))}: short record"
    assert [r.seq for r in Journal(d).records()] == [1]    # the reader stops quietly


def test_damage_message_names_the_following_record(tmp_path: Path) -> None:
    d = tmp_path / "j"
    data = bytearray(_recs(1, 2, 3))
    at = len(_recs(1))
    data[at + HEADER.size] ^= 0xFF      # payload of seq 2
    segment = _write(d, 1, bytes(data))
    with pytest.raises(JournalCorrupt) as info:
        list(Journal(d).replay())
    assert str(info.value) == (f"{segment} at offset {at}: checksum mismatch, but a valid record follows at "
                               f"offset {len(_recs(1, 2))}; this is damage, not a torn write")
    assert segment.read_bytes() == bytes(data)   # nothing cut


def test_valid_record_after_looks_for_the_next_two_seqs() -> None:
    one, two, three, four = (encode_record(s, b"pp") for s in (1, 2, 3, 4))
    bad = b"\xff" * 20
    # seq 2 damaged, seq 3 follows: found (last_seq + 2)
    data = one + bad + three
    assert _valid_record_after(data, len(one), 1) == len(one) + len(bad)
    # seq 2 follows the garbage: found (last_seq + 1)
    assert _valid_record_after(one + bad + two, len(one), 1) == len(one) + len(bad)
    # only seq 4 follows: not looked for
    assert _valid_record_after(one + bad + four, len(one), 1) is None
    # a record whose checksum fails does not count
    broken = bytearray(three)
    broken[-1] ^= 1
    assert _valid_record_after(one + bad + bytes(broken), len(one), 1) is None
    # a record running past the end does not count
    assert _valid_record_after(one + bad + three[:-1], len(one), 1) is None
    # exactly at the end counts
    assert _valid_record_after(one + bad + three, len(one), 1) == len(one + bad)
    # a record starting at or before pos is not "after"
    assert _valid_record_after(one + two, 0, 1) == len(one)
    assert _valid_record_after(one + two, len(one) - 1, 1) == len(one)
    assert _valid_record_after(one + two, len(one), 1) is None
    # the seq bytes appearing in garbage before the real record are skipped
    fake = b"\x00" * 8 + SEQ.pack(3) + b"zz"
    assert _valid_record_after(one + bad + fake + three, len(one), 1) == len(one + bad + fake)
    # the first candidate seq is tried first
    assert _valid_record_after(one + bad + three + two, len(one), 1) == len(one + bad + three)


def test_replay_skips_segments_before_the_snapshot(tmp_path: Path) -> None:
    d = tmp_path / "j"
    first = _write(d, 1, b"garbage that would be corrupt")
    _write(d, 3, _recs(3, 4))
    _write(d, 5, _recs(5))
    j = Journal(d)
    # segment 1 holds seqs < 3: skipped when after_seq >= 2, read otherwise
    assert [r.seq for r in j.replay(after_seq=2)] == [3, 4, 5]
    assert [r.seq for r in j.records(after_seq=2)] == [3, 4, 5]
    with pytest.raises(JournalCorrupt):
        list(Journal(d).replay(after_seq=1))
    assert list(Journal(d).records(after_seq=1)) == []
    first.unlink()
    j = Journal(d)
    assert [r.seq for r in j.replay(after_seq=3)] == [4, 5]
    assert j.last_seq == 5
    assert [r.seq for r in j.replay(after_seq=4)] == [5]
    assert [r.seq for r in j.records(after_seq=4)] == [5]
    assert [r.seq for r in j.records(after_seq=5)] == []
    assert [r.seq for r in j.replay(after_seq=5)] == []


def test_replay_last_seq_is_the_max_seen(tmp_path: Path) -> None:
    d = tmp_path / "j"
    _write(d, 1, _recs(1, 2, 3))
    j = Journal(d)
    assert list(j.replay(after_seq=3)) == []
    assert j.last_seq == 3
    j.last_seq = 10
    list(j.replay())
    assert j.last_seq == 10
    assert Journal(d).scan_last_seq() == 3


def test_records_does_not_cut_and_reads_all_segments(tmp_path: Path) -> None:
    d = tmp_path / "j"
    _write(d, 1, _recs(1, 2))
    last = _write(d, 3, _recs(3) + b"\x07")
    j = Journal(d)
    assert [(r.seq, r.payload) for r in j.records()] == [(1, b"p1"), (2, b"p2"), (3, b"p3")]
    assert last.read_bytes() == _recs(3) + b"\x07" and j.truncated_bytes == 0 and j.last_seq == 0


def test_open_for_append_continues_last_segment(tmp_path: Path) -> None:
    d = tmp_path / "j"
    _write(d, 1, _recs(1))
    last = _write(d, 2, _recs(2))
    j = Journal(d, segment_bytes=1 << 20)
    j.scan_last_seq()
    j.open_for_append()
    j.append([(3, b"p3")])
    j.close()
    assert last.read_bytes() == _recs(2, 3)
    assert oct(last.stat().st_mode & 0o777) in {oct(0o644), oct(0o644 & ~_umask())}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_new_journal_starts_after_last_seq(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    j.last_seq = 41
    j.open_for_append()
    assert [p.name for p in j.segments()] == [f"{42:020d}.wal"]
    j.append([(42, b"a"), (43, b"b")])
    assert j.last_seq == 43
    j.rotate()
    assert [p.name for p in j.segments()] == [f"{42:020d}.wal", f"{44:020d}.wal"]
    j.close()


def test_segment_rolls_at_exactly_segment_bytes(tmp_path: Path) -> None:
    size = len(encode_record(1, b"x" * 10))
    j = Journal(tmp_path / "j", segment_bytes=2 * size)
    j.open_for_append()
    j.append([(1, b"x" * 10)])
    j.append([(2, b"x" * 10)])        # size now == segment_bytes: the next append starts a segment
    assert len(j.segments()) == 1
    j.append([(3, b"x" * 10), (4, b"x" * 10)])
    assert [int(p.stem) for p in j.segments()] == [1, 3]
    j.close()
    assert [r.seq for r in Journal(tmp_path / "j").replay()] == [1, 2, 3, 4]


def test_append_writes_in_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write
    calls = []

    def small(fd: int, data) -> int:
        calls.append(len(data))
        return real(fd, bytes(data[:5]))

    j = Journal(tmp_path / "j")
    j.open_for_append()
    monkeypatch.setattr(os, "write", small)
    j.append([(1, b"payload-one"), (2, b"two")])
    monkeypatch.undo()
    assert len(calls) > 2
    j.close()
    assert [(r.seq, r.payload) for r in Journal(tmp_path / "j").replay()] == [(1, b"payload-one"), (2, b"two")]
    assert j.size_bytes() == len(encode_record(1, b"payload-one") + encode_record(2, b"two"))


def test_failed_cleanup_is_logged_and_the_write_error_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    j = Journal(tmp_path / "j")
    j.open_for_append()
    j.append([(1, b"one")])

    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    def ro(_fd: int, _size: int) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "fdatasync", full)
    monkeypatch.setattr(os, "ftruncate", ro)
    with caplog.at_level(logging.ERROR, logger="actors.state_writer.journal"), pytest.raises(OSError) as info:
        j.append([(2, b"two")])
    assert info.value.errno == 28
    assert caplog.messages == ["journal: could not cut back a failed append: [Errno 30] Read-only file system"]
    assert j.last_seq == 1


def test_failed_append_cuts_back_to_the_size_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = Journal(tmp_path / "j")
    j.open_for_append()
    j.append([(1, b"one")])
    cuts = []
    real = os.ftruncate

    def spy(fd: int, size: int) -> None:
        cuts.append(size)
        real(fd, size)

    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", full)
    monkeypatch.setattr(os, "ftruncate", spy)
    with pytest.raises(OSError):
        j.append([(2, b"two")])
    monkeypatch.undo()
    assert cuts == [len(encode_record(1, b"one"))]
    j.append([(2, b"two")])
    assert j.size_bytes() == len(encode_record(1, b"one") + encode_record(2, b"two"))
    j.close()


def test_compact_boundaries(tmp_path: Path) -> None:
    d = tmp_path / "j"
    _write(d, 1, _recs(1, 2))
    _write(d, 3, _recs(3))
    _write(d, 4, _recs(4))
    j = Journal(d)
    assert j.compact(snapshot_seq=0) == 0
    assert j.compact(snapshot_seq=1) == 0
    assert j.compact(snapshot_seq=3) == 2
    assert [int(p.stem) for p in j.segments()] == [4]
    assert j.compact(snapshot_seq=100) == 0


def test_valid_record_after_checks_every_occurrence_in_order() -> None:
    one, three = encode_record(1, b"pp"), encode_record(3, b"pp")
    bad = b"\xff" * 20
    fake = b"\x00" * 8 + SEQ.pack(3) + b"zz"
    tail = b"\x00" * 8 + SEQ.pack(3)
    # the real record sits between two look-alikes: the last occurrence alone is not enough
    assert _valid_record_after(one + bad + three + tail, len(one), 1) == len(one + bad)
    assert _valid_record_after(one + bad + fake + three + tail, len(one), 1) == len(one + bad + fake)


def test_damaged_first_record_of_a_segment_is_damage(tmp_path: Path) -> None:
    d = tmp_path / "j"
    data = bytearray(_recs(5, 6))
    data[HEADER.size] ^= 0xFF          # payload of seq 5, the segment's first record
    _write(d, 5, bytes(data))
    with pytest.raises(JournalCorrupt, match="valid record follows at offset"):
        list(Journal(d).replay())


def test_new_segment_mode(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    j.open_for_append()
    j.rotate()
    j.close()
    for segment in j.segments():
        assert segment.stat().st_mode & 0o777 == 0o644 & ~_umask()


def test_append_opens_the_journal_itself(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    j.append([(1, b"a")])
    fd = j._fd
    j.append([(2, b"b")])
    assert j._fd == fd                  # not reopened
    j.close()
    assert j._fd is None
    with pytest.raises(OSError):
        os.fstat(fd)                    # closed
    assert [r.seq for r in Journal(tmp_path / "j").replay()] == [1, 2]


def test_records_skips_a_covered_segment_before_the_last(tmp_path: Path) -> None:
    d = tmp_path / "j"
    _write(d, 1, b"garbage that would stop the reader")
    _write(d, 3, _recs(3, 4))
    assert [r.seq for r in Journal(d).records(after_seq=2)] == [3, 4]
    assert list(Journal(d).records(after_seq=1)) == []


def test_scan_last_seq_reads_only_the_last_segment(tmp_path: Path) -> None:
    # Start-up asks only for the newest seq: damage in an older segment (already covered by the
    # snapshot) must not stop it; replaying from 0 would raise JournalCorrupt here.
    d = tmp_path / "j"
    _write(d, 1, _recs(1) + b"\xff" * 40 + _recs(2))
    _write(d, 3, _recs(3, 4))
    with pytest.raises(JournalCorrupt):
        list(Journal(d).replay())
    assert Journal(d).scan_last_seq() == 4


def test_valid_record_after_finds_a_seq_that_overlaps_an_earlier_look_alike() -> None:
    # A seq of eight 0x01 bytes after a checksum ending in 0x01: the needle matches one byte before the
    # real seq too; that look-alike fails its checksum and the search must go on from the next byte.
    seq = 0x0101010101010101
    payload = next(p for n in range(10_000) if (record_header(seq, p := f"x{n}".encode())[7]) == 0x01)
    record = encode_record(seq, payload)
    assert record[7:16] == b"\x01" * 9
    bad = b"\x00" * 20
    assert _valid_record_after(bad + record, 0, seq - 1) == len(bad)
