"""Logging set-up for an actor process (called from its entry point, never at import)."""

from __future__ import annotations

import logging
import sys


def configure_logging(actor: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {actor}[%(process)d] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
