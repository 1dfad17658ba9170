from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import PaperSettings
from exchange.paper.engine import PaperExchange
from exchange.paper.store import PaperStore

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


class Clock:
    """The engine's wall clock, moved by the test."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def paper_settings(**overrides: object) -> PaperSettings:
    base = {"seed": 11, "tick_s": 0.25, "bar_s": 5.0, "warmup_bars": 60, "reject_prob": 0.0}
    return PaperSettings.model_validate({**base, **overrides})


@pytest.fixture
def open_exchange(tmp_path: Path) -> Iterator[Callable[..., tuple[PaperExchange, Clock]]]:
    """Open (or reopen, as after a restart) a paper exchange on one database file."""
    opened: list[PaperExchange] = []
    clock = Clock()

    def _open(**overrides: object) -> tuple[PaperExchange, Clock]:
        engine = PaperExchange(paper_settings(**overrides), SYMBOLS, PaperStore(tmp_path / "exchange.db"), clock)
        opened.append(engine)
        return engine, clock

    yield _open
    for engine in opened:
        try:
            engine.close()
        except Exception:
            pass
