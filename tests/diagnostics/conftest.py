"""Fixtures: an instance with a running state writer and diagnostics actor, tuned for quick liveness checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.diagnostics.helpers import fast_instance, stop_actors_first, wait_diagnostics
from tests.harness import Instance
from tests.producers import Producers


@pytest.fixture
def diag(tmp_path: Path) -> Iterator[Instance]:
    with fast_instance(tmp_path) as inst:
        inst.start_writer()
        inst.start("diagnostics")
        # Telemetry sent before diagnostics subscribes is not in any snapshot: wait until it is in sync.
        wait_diagnostics(inst, lambda b: "diagnostics" in b["actors"], "diagnostics in sync and publishing")
        yield inst
        stop_actors_first(inst)


@pytest.fixture
def sender(diag: Instance) -> Iterator[Producers]:
    snd = Producers(diag.settings)
    yield snd
    snd.close(flush_timeout=5)
