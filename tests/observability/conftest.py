from __future__ import annotations

import pytest

from config.settings import ACTORS
from tests.harness import Instance


@pytest.fixture
def group(v7: Instance) -> Instance:
    """Every actor of the group running in an isolated instance (the hub first)."""
    v7.start_writer()
    for actor in ACTORS:
        if actor != "state_writer":
            v7.start(actor)
    return v7
