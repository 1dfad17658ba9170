"""Snapshot files: the writer's whole in-memory state at one seq, so replay starts there.

`<journal_dir>/snapshot-<seq:020d>.msgpack` = magic | u32 crc32 | msgpack(state dump).
Written atomically; the two newest are kept; a snapshot that fails its checksum is skipped
in favour of the previous one (the journal still covers the difference).
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path
from typing import Any

import msgpack

from actors.base.atomic_file import atomic_write

log = logging.getLogger(__name__)

MAGIC = b"V7SNAP1\n"
CRC = struct.Struct("<I")
KEEP = 2


def _path(directory: Path, seq: int) -> Path:
    return directory / f"snapshot-{seq:020d}.msgpack"


def list_snapshots(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(directory.glob("snapshot-*.msgpack"))


def snapshot_seq(path: Path) -> int:
    return int(path.stem.split("-", 1)[1])


def retained_from(directory: Path) -> int:
    """The seq of the oldest snapshot kept: the journal must reach back to it (a fallback
    when the newest snapshot turns out unreadable)."""
    snaps = list_snapshots(directory)
    return snapshot_seq(snaps[0]) if snaps else 0


def write_snapshot(directory: Path, seq: int, data: dict[str, Any]) -> Path:
    body = msgpack.packb(data, use_bin_type=True)
    path = _path(directory, seq)
    atomic_write(path, MAGIC + CRC.pack(zlib.crc32(body)) + body)
    for old in list_snapshots(directory)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def load_latest(directory: Path) -> dict[str, Any] | None:
    for path in reversed(list_snapshots(directory)):
        raw = path.read_bytes()
        head = len(MAGIC) + CRC.size
        if raw[: len(MAGIC)] != MAGIC or len(raw) < head:
            log.error("snapshot %s: bad header, skipping", path.name)
            continue
        (crc,) = CRC.unpack_from(raw, len(MAGIC))
        body = raw[head:]
        if zlib.crc32(body) != crc:
            log.error("snapshot %s: checksum mismatch, skipping", path.name)
            continue
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    return None
