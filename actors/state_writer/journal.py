"""Append-only journal of every committed message, with group commit.

Layout: `<journal_dir>/<first_seq:020d>.wal` segments. A record is

    u32 length | u32 crc32(seq bytes + payload) | u64 seq | payload

little-endian, where payload is the ingest frame exactly as the sender sent it (a msgpack
envelope). `append()` writes a whole batch with one write and one fsync; the batch is durable
when it returns, and only then are its messages ACKed. A failed append truncates the segment
back to where it was, so a half-written batch never stays behind.

On open, the tail of the last segment is checked: a torn final record (crash mid-write) is
cut off. A bad record anywhere else, or one followed by a valid record (damage inside data
that was fsynced and ACKed, not a torn write), stops start-up with `JournalCorrupt`: cutting
there would silently drop ACKed messages. Segments wholly covered by a snapshot are deleted
by `compact()`.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from actors.base.atomic_file import fsync_dir

log = logging.getLogger(__name__)

HEADER = struct.Struct("<IIQ")
SEQ = struct.Struct("<Q")
SUFFIX = ".wal"
MAX_RECORD = 256 << 20


class JournalCorrupt(Exception):
    """A record before the tail fails its checksum. Start-up stops: restore the journal or a snapshot."""


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    payload: bytes


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def record_header(seq: int, payload: bytes) -> bytes:
    seq_bytes = SEQ.pack(seq)
    return HEADER.pack(len(payload), zlib.crc32(payload, zlib.crc32(seq_bytes)), seq)


def encode_record(seq: int, payload: bytes) -> bytes:
    return record_header(seq, payload) + payload


class Journal:
    def __init__(self, directory: Path, segment_bytes: int = 64 << 20) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._size = 0
        self._current: Path | None = None
        self.last_seq = 0
        self.truncated_bytes = 0

    # --- reading -------------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.suffix == SUFFIX and p.stem.isdigit())

    def _read_segment(self, path: Path, *, is_last: bool) -> Iterator[tuple[Record, int]]:
        """Yield (record, end offset). A bad record in the last segment is a torn tail."""
        with path.open("rb") as fh:
            data = fh.read()
        pos = 0
        last_seq = int(path.stem) - 1  # a segment is named after its first seq
        while pos < len(data):
            bad = None
            if pos + HEADER.size > len(data):
                bad = "short header"
            else:
                length, crc, seq = HEADER.unpack_from(data, pos)
                end = pos + HEADER.size + length
                if length > MAX_RECORD or end > len(data):
                    bad = "short record"
                else:
                    payload = data[pos + HEADER.size:end]
                    if zlib.crc32(payload, zlib.crc32(SEQ.pack(seq))) != crc:
                        bad = "checksum mismatch"
            if bad:
                if not is_last:
                    raise JournalCorrupt(f"{path} at offset {pos}: {bad}")
                later = _valid_record_after(data, pos, last_seq)
                if later is not None:
                    raise JournalCorrupt(
                        f"{path} at offset {pos}: {bad}, but a valid record follows at offset {later}; "
                        "this is damage, not a torn write")
                raise _TornTail(pos, bad)
            last_seq = seq
            yield Record(seq, payload), end
            pos = end

    def replay(self, after_seq: int = 0) -> Iterator[Record]:
        """Every record with seq > after_seq, in order; cuts a torn tail off the last segment."""
        segments = self.segments()
        for index, path in enumerate(segments):
            is_last = index == len(segments) - 1
            if not is_last and int(segments[index + 1].stem) <= after_seq + 1:
                continue  # wholly before the snapshot
            try:
                for record, _end in self._read_segment(path, is_last=is_last):
                    self.last_seq = max(self.last_seq, record.seq)
                    if record.seq > after_seq:
                        yield record
            except _TornTail as torn:
                size = path.stat().st_size
                log.warning("journal %s: cutting torn tail at %d (%s, %d bytes)",
                            path.name, torn.offset, torn.reason, size - torn.offset)
                self.truncated_bytes += size - torn.offset
                with path.open("r+b") as fh:
                    fh.truncate(torn.offset)
                    os.fsync(fh.fileno())

    def records(self, after_seq: int = 0) -> Iterator[Record]:
        """Every complete record with seq > after_seq, read only: stops at a torn tail without
        cutting it (for tools and tests looking at a journal another process may be writing, and
        for the writer's own catch-up of a commit hook)."""
        segments = self.segments()
        for index, path in enumerate(segments):
            if index + 1 < len(segments) and int(segments[index + 1].stem) <= after_seq + 1:
                continue  # wholly at or before after_seq
            try:
                for record, _end in self._read_segment(path, is_last=True):
                    if record.seq > after_seq:
                        yield record
            except (_TornTail, JournalCorrupt):
                return

    def scan_last_seq(self) -> int:
        for _ in self.replay(after_seq=1 << 62):
            pass
        return self.last_seq

    # --- writing -------------------------------------------------------------------------------

    def open_for_append(self) -> None:
        segments = self.segments()
        if segments:
            self._current = segments[-1]
            self._fd = os.open(self._current, os.O_WRONLY | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
        else:
            self._start_segment(self.last_seq + 1)

    def _start_segment(self, first_seq: int) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        self._current = self.directory / _segment_name(first_seq)
        self._fd = os.open(self._current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size
        fsync_dir(self.directory)

    def append(self, records: list[tuple[int, bytes]]) -> None:
        """Write and fsync a batch. Raises OSError (disk full, read-only) with the file unchanged."""
        if not records:
            return
        if self._fd is None:
            self.open_for_append()
        assert self._fd is not None
        if self._size >= self.segment_bytes:
            self._start_segment(records[0][0])
        parts: list[bytes] = []
        for seq, payload in records:
            parts.append(record_header(seq, payload))
            parts.append(payload)
        blob = b"".join(parts)
        before = self._size
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(self._fd, view):]
            os.fdatasync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, before)
                os.fsync(self._fd)
            except OSError as cleanup:
                log.error("journal: could not cut back a failed append: %s", cleanup)
            raise
        self._size = before + len(blob)
        self.last_seq = records[-1][0]

    def rotate(self) -> None:
        """Start a new segment at the next seq (called right after a snapshot)."""
        self._start_segment(self.last_seq + 1)

    def compact(self, snapshot_seq: int) -> int:
        """Delete segments whose records are all <= snapshot_seq; returns how many."""
        segments = self.segments()
        removed = 0
        for index, path in enumerate(segments[:-1]):
            if int(segments[index + 1].stem) <= snapshot_seq + 1:
                path.unlink()
                removed += 1
        if removed:
            fsync_dir(self.directory)
        return removed

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments())

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None


def _valid_record_after(data: bytes, pos: int, last_seq: int) -> int | None:
    """Offset of a valid record after a bad one at `pos`, looking for the next two seqs."""
    for seq in (last_seq + 1, last_seq + 2):
        needle = SEQ.pack(seq)
        at = data.find(needle, pos + 1)
        while at != -1:
            start = at - 8  # seq is the last field of the header
            if start > pos:
                length, crc, _seq = HEADER.unpack_from(data, start)
                end = start + HEADER.size + length
                if end <= len(data) and zlib.crc32(data[start + HEADER.size:end], zlib.crc32(needle)) == crc:
                    return start
            at = data.find(needle, at + 1)
    return None


class _TornTail(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason
