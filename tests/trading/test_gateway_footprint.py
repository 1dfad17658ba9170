"""A SIM group never loads the venue library (ccxt is ~55 MiB of RSS in every process that imports it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM_MODULES = [
    "actors.exchange.main", "actors.executor.main", "actors.router.main", "actors.exit_scanner.main",
    "actors.sync.main", "actors.diagnostics.main", "actors.dashboard.main", "actors.state_writer.main", "cli.main",
]


def test_no_program_module_loads_ccxt() -> None:
    # One fresh interpreter for all of them: the question is whether any of them pulls it in.
    probe = (f"import importlib, sys\nfor m in {PROGRAM_MODULES!r}:\n    importlib.import_module(m)\n"
             "    print(m, 'ccxt' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = [line.split()[0] for line in out.stdout.splitlines() if line.endswith("True")]
    assert len(out.stdout.splitlines()) == len(PROGRAM_MODULES)
    assert loaded == [], f"ccxt is imported at load time by {loaded[0]}"


def test_the_venue_adapter_still_loads_on_use() -> None:
    from exchange import binance_usdm

    assert binance_usdm.BinanceUsdmAdapter.__name__ == "BinanceUsdmAdapter"
    with pytest.raises(AttributeError):
        binance_usdm.NoSuchThing  # noqa: B018
