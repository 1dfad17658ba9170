"""The old way, for comparison: every update rewrites the JSON file directly, as the seed
code did (temp file, fsync, os.replace), one write per update."""

from __future__ import annotations

import json
import os
import tempfile
import time

from bench.state_plane.payload import positions


def _write(path: str, payload: dict) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", dir=directory)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def direct_writes(count: int, scratch: str) -> tuple[float, int]:
    """(updates per second, files written)."""
    path = os.path.join(scratch, "positions_baseline.json")
    docs = [positions(i).to_document() for i in range(count)]
    started = time.perf_counter()
    for doc in docs:
        _write(path, doc)
    return count / (time.perf_counter() - started), count
