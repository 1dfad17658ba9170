"""The seeds' state contract (000 §4, 001 §4.1), through a real state writer and real files.

Each test sends typed messages with a real Sender, then reads the file the writer produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.codec import BusError
from bus.messages import PositionsState
from bus.protocol import ErrorCode
from bus.sender import Sender
from tests import SIM_SCOPE
from tests.harness import Instance
from tests.support.messages import kpis, position, positions, sample_ledger


@pytest.fixture(scope="module")
def sender(shared_hub: Instance) -> Iterator[Sender]:
    s = Sender(shared_hub.settings, "executor")
    yield s
    s.close()


def _seen(inst: Instance, seq: int) -> bool:
    from bus.subscriber import request_status

    return request_status(inst.settings)["seq"] >= seq


def _file_after(inst: Instance, name: str, predicate) -> dict:
    path: Path = inst.state_dir / name
    data: dict = {}

    def ok() -> bool:
        nonlocal data
        if not path.exists():
            return False
        data = json.loads(path.read_text())
        return predicate(data)

    inst.wait_for(ok, 10, f"{name} to be written")
    return data


def test_positions_state_minimal_schema(shared_hub: Instance, sender: Sender) -> None:
    sender.send_and_wait(positions(position("BTCUSDT", realized=1.5)), timeout=10)
    data = _file_after(shared_hub, "positions_state.json", lambda d: d["positions"][0]["realized_pnl"] == 1.5)
    assert "updated_at" in data
    assert "positions" in data
    for row in data["positions"]:
        assert {"symbol", "side", "qty"} <= row.keys()
        if abs(row["qty"]) > 0:
            assert row["entry_price"] > 0
            assert row["mark_price"] > 0
            assert row["notional"] >= 0
            assert "unrealized_pnl" in row


def test_two_rows_in_two_rows_out(shared_hub: Instance, sender: Sender) -> None:
    sender.send_and_wait(positions(position("BTCUSDT", realized=2.0), position("ETHUSDT", 1.0, 2000.0, 2100.0)),
                         timeout=10)
    data = _file_after(shared_hub, "positions_state.json", lambda d: d["positions"][0]["realized_pnl"] == 2.0)
    assert len(data["positions"]) == 2
    assert [r["symbol"] for r in data["positions"]] == ["BTCUSDT", "ETHUSDT"]
    assert data["positions"][1]["entry_price"] == 2000.0
    assert data["positions"][1]["unrealized_pnl"] == pytest.approx(100.0)


def test_zero_qty_rows_are_allowed_with_zero_prices(shared_hub: Instance, sender: Sender) -> None:
    sender.send_and_wait(positions(position("BTCUSDT", realized=3.0), position("SOLUSDT", 0.0, 0.0, 0.0)),
                         timeout=10)
    data = _file_after(shared_hub, "positions_state.json", lambda d: d["positions"][0]["realized_pnl"] == 3.0)
    flat = data["positions"][1]
    assert flat["symbol"] == "SOLUSDT"
    assert flat["qty"] == 0 and flat["entry_price"] == 0 and flat["mark_price"] == 0


@pytest.mark.parametrize("entry, mark", [(0.0, 43000.0), (42000.0, 0.0)])
def test_non_zero_row_without_prices_is_rejected_whole(shared_hub: Instance, sender: Sender,
                                                       entry: float, mark: float) -> None:
    # A marker of its own per run: the hub is shared, and a file already showing the previous
    # run's value would be read before this run's write lands (then `after != before`).
    marker = 4.0 + entry / 1e6
    seq = sender.send_and_wait(positions(position("BTCUSDT", realized=marker)), timeout=10)
    before = _file_after(shared_hub, "positions_state.json", lambda d: d["positions"][0]["realized_pnl"] == marker)
    # Build the bad row past the model's own check, the way a buggy or foreign client would.
    good = position("ETHUSDT", 1.0, 2000.0, 2100.0)
    bad = position("BTCUSDT", realized=99.0).model_copy(update={"entry_price": entry, "mark_price": mark})
    with pytest.raises(BusError) as err:
        sender.send_and_wait(PositionsState.model_construct(type="positions_state", v=2, scope=SIM_SCOPE,
                                                            positions=[good, bad]), timeout=10)
    assert err.value.code is ErrorCode.CONTRACT_BREACH
    assert err.value.field == "positions.1"
    assert "BTCUSDT" in err.value.detail
    # Whole message refused, nothing committed: the last good file stays and the seq did not move.
    assert _seen(shared_hub, seq) and not _seen(shared_hub, seq + 1)
    after = json.loads((shared_hub.state_dir / "positions_state.json").read_text())
    assert after == before


def test_positions_ledger_required_keys(shared_hub: Instance, sender: Sender) -> None:
    sender.send_and_wait(sample_ledger(2), timeout=10)
    data = _file_after(shared_hub, "positions_ledger.json", lambda d: len(d.get("entries", [])) == 2)
    assert {"updated_at", "entries", "tp_sl_levels", "metadata"} <= data.keys()
    assert data["metadata"] == {"version": "v1", "entry_count": 2}
    for entry in data["entries"]:
        assert {"symbol", "side", "position_id", "qty", "entry_price"} <= entry.keys()
    assert data["tp_sl_levels"]["BTCUSDT"] == {"tp": 120.0, "sl": 90.0}


def test_empty_ledger_still_has_every_key(shared_hub: Instance, sender: Sender) -> None:
    sender.send_and_wait(sample_ledger(0), timeout=10)
    data = _file_after(shared_hub, "positions_ledger.json", lambda d: d.get("entries") == [])
    assert data["tp_sl_levels"] == {}
    assert data["metadata"]["entry_count"] == 0


def test_kpis_v7_required_keys(shared_hub: Instance, sender: Sender) -> None:
    sender.send_and_wait(kpis(), timeout=10)
    data = _file_after(shared_hub, "kpis_v7.json", lambda d: "portfolio" in d)
    assert {"updated_at", "portfolio", "per_symbol"} <= data.keys()
    assert {"nav", "dd_pct"} <= data["portfolio"].keys()
    assert data["per_symbol"]["BTCUSDT"] == {"pnl": 12.34, "pnl_pct": 0.0123, "exposure_nav_pct": 0.1}


def test_state_files_schema_spec(shared_hub: Instance) -> None:
    """Seed 000 §4.4: every state file present has its required keys; mode 0644."""
    required = {
        "positions_state.json": ["updated_at", "positions"],
        "positions_ledger.json": ["updated_at", "entries", "tp_sl_levels"],
        "kpis_v7.json": ["updated_at", "portfolio", "per_symbol"],
    }
    for name, keys in required.items():
        # Every listed file must be there (the hub writes them all at start): a test that only
        # checked files that happened to exist would assert nothing on a hub that wrote none.
        path = shared_hub.state_dir / name
        shared_hub.wait_for(path.exists, 10, f"{name} written by the hub")
        data = json.loads(path.read_text())
        assert all(k in data for k in keys), name
        assert path.stat().st_mode & 0o777 == 0o644
