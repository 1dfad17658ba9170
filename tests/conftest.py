from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Instance, instance


@pytest.fixture
def v7(tmp_path: Path) -> Iterator[Instance]:
    """An isolated instance (own home, own ports); every process it starts is stopped after the test."""
    with instance(tmp_path) as inst:
        yield inst


@pytest.fixture
def hub(v7: Instance) -> Iterator[Instance]:
    """An isolated instance with a running state writer."""
    v7.start_writer()
    yield v7
