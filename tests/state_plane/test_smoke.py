"""First end-to-end check of the state plane with a real state writer process."""

from __future__ import annotations

import json

from bus.messages import PositionRow, PositionsState
from bus.sender import Sender
from tests import SIM_SCOPE
from tests.harness import Instance


def test_durable_send_writes_state_file(hub: Instance) -> None:
    sender = Sender(hub.settings, "executor")
    try:
        row = PositionRow(symbol="BTCUSDT", side="LONG", qty=0.01, entry_price=42000.0, mark_price=43000.0,
                          notional=430.0, unrealized_pnl=10.0)
        seq = sender.send_and_wait(PositionsState(scope=SIM_SCOPE, positions=[row]), timeout=10)
    finally:
        sender.close()
    assert seq == 1
    path = hub.state_dir / "positions_state.json"
    hub.wait_for(path.exists, 5, "positions_state.json")
    data = json.loads(path.read_text())
    assert data["positions"][0]["entry_price"] == 42000.0
    assert "updated_at" in data
