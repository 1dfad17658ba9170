"""`v7 run state_writer`: lock, recover, serve until SIGTERM, then stop cleanly."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import zmq
from prometheus_client import CollectorRegistry

from actors.base.gc_tuning import tune_gc
from actors.base.logs import configure_logging
from actors.state_writer.hooks import CommitHook
from actors.state_writer.journal import JournalCorrupt
from actors.state_writer.lock import StateDirLocked
from actors.state_writer.server import StateWriter
from actors.state_writer.store import PositionStore, StoreError
from bus.security import SecurityError
from config.settings import Settings

log = logging.getLogger(__name__)

EXIT_CONFIG = 2
EXIT_LOCKED = 3
EXIT_BIND = 4
EXIT_CORRUPT = 5
EXIT_STORE = 7


# Tests start the writer's store clock at a chosen instant (it then runs at the wall clock's rate)
# so that a real writer process can be taken across a UTC midnight without waiting for one.
TEST_CLOCK_ENV = "V7_TEST_STORE_CLOCK"


def store_clock(environ: Mapping[str, str] | None = None) -> Callable[[], datetime] | None:
    """The store's clock from `V7_TEST_STORE_CLOCK` (an ISO time with offset), None when unset."""
    value = (os.environ if environ is None else environ).get(TEST_CLOCK_ENV)
    if not value:
        return None
    start = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if start.tzinfo is None:
        raise ValueError(f"{TEST_CLOCK_ENV}={value!r}: the time needs an offset (e.g. Z)")
    began = time.monotonic()
    log.warning("store clock starts at %s (%s is set: a test clock)", start.isoformat(), TEST_CLOCK_ENV)
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def build_hooks(settings: Settings, registry: CollectorRegistry | None = None) -> list[CommitHook]:
    """Components applied inside the commit path, before any ACK."""
    clock = store_clock()
    return [PositionStore(settings, registry) if clock is None else PositionStore(settings, registry, clock=clock)]


def run(settings: Settings) -> int:
    configure_logging("state_writer", settings.log_level)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: draining and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    registry = CollectorRegistry()
    writer = StateWriter(settings, build_hooks(settings, registry), registry=registry)
    try:
        writer.start()
    except StateDirLocked as exc:
        print(f"v7 state_writer: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except JournalCorrupt as exc:
        print(f"v7 state_writer: journal corrupt: {exc}", file=sys.stderr)
        return EXIT_CORRUPT
    except SecurityError as exc:
        print(f"v7 state_writer: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except zmq.ZMQError as exc:
        print(f"v7 state_writer: cannot bind bus endpoints: {exc}", file=sys.stderr)
        return EXIT_BIND
    except StoreError as exc:
        print(f"v7 state_writer: positions store: {exc}", file=sys.stderr)
        return EXIT_STORE
    tune_gc()
    try:
        writer.run(stop)
    finally:
        writer.shutdown()
    return 0
