"""A read-only copy of the state documents in a configured directory (seed 002's dashboard
mirror), written from what the bus delivers. It never reads the state writer's files, and a
reader of the mirror sees whole files only (temp file, fsync, rename)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from actors.base.atomic_file import atomic_write

log = logging.getLogger(__name__)


class Mirror:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._written: dict[str, Any] = {}
        self.writes = 0
        self.errors = 0

    def sync(self, documents: dict[str, dict[str, Any]]) -> int:
        """Write every document that changed since the last call; returns how many were written."""
        changed = {k: v for k, v in documents.items() if self._written.get(k) is not v}
        if not changed:
            return 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.errors += 1
            log.error("mirror directory %s unusable: %s", self.directory, exc)
            return 0
        written = 0
        for key, doc in changed.items():
            data = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False).encode() + b"\n"
            try:
                atomic_write(self.directory / f"{key}.json", data)
            except OSError as exc:
                self.errors += 1
                log.error("mirror of %s not written: %s", key, exc)
                continue
            self._written[key] = doc
            written += 1
        self.writes += written
        return written
