from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import Instance, instance


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One running state writer for a whole module (tests that only add messages to it)."""
    with instance(tmp_path_factory.mktemp("hub")) as inst:
        inst.start_writer()
        yield inst
