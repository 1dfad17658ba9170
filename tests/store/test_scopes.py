"""Modes and accounts: SIM and LIVE (and several accounts) are kept apart; a switch closes nothing."""

from __future__ import annotations

import json
import signal

from actors.state_writer.store.tables import PositionEventRow, TradeRecordRow
from bus.messages import SwitchScope
from tests.harness import Instance
from tests.store.helpers import Backend, bus, integrity_ok, open_positions
from tests.store.helpers import table as rows
from tests.store.helpers import views as get_views
from tests.support.messages import fill, intent, ledger, marks

SIM = ("SIM", "paper")
LIVE1 = ("LIVE", "acct-1")
LIVE2 = ("LIVE", "acct-2")


def test_mode_switch_with_open_positions_in_sim_and_live(store_v7: Instance, backend: Backend) -> None:
    store_v7.start_writer()
    with bus(store_v7) as b:
        b.send(intent("s1", "BTCUSDT", "BUY", 1.0, tp=110.0, sl=95.0),
               fill("f1", "s1", "BTCUSDT", "BUY", 1.0, 100.0))
        b.send(intent("l1", "BTCUSDT", "SELL", 2.0, mode="LIVE", account="acct-1", tp=90.0, sl=120.0),
               fill("f2", "l1", "BTCUSDT", "SELL", 2.0, 100.0, mode="LIVE", account="acct-1"))
        b.send(intent("l2", "ETHUSDT", "BUY", 1.0, mode="LIVE", account="acct-2"),
               fill("f3", "l2", "ETHUSDT", "BUY", 1.0, 50.0, mode="LIVE", account="acct-2"))
        b.send(marks(BTCUSDT=105.0))  # the active scope (SIM/paper) sees it
        b.send(SwitchScope(mode="LIVE", account="acct-1", reason="test"))
        b.send(marks("LIVE", "acct-1", BTCUSDT=92.0))  # marks of LIVE/acct-1
        b.send(ledger({"symbol": "BTCUSDT", "position_id": "l1", "side": "SHORT", "tp": 85.0}, mode="LIVE",
                      account="acct-1"))
    pos = open_positions(store_v7)
    assert set(pos) == {(*SIM, "BTCUSDT"), (*LIVE1, "BTCUSDT"), (*LIVE2, "ETHUSDT")}
    sim, live = pos[(*SIM, "BTCUSDT")], pos[(*LIVE1, "BTCUSDT")]
    assert (sim.side, sim.qty, sim.trade_min_price, sim.trade_max_price, sim.tp, sim.sl) == (
        "LONG", 1.0, 100.0, 105.0, 110.0, 95.0)
    assert (live.side, live.qty, live.trade_min_price, live.trade_max_price, live.tp, live.sl) == (
        "SHORT", 2.0, 92.0, 100.0, 85.0, 120.0)
    assert pos[(*LIVE2, "ETHUSDT")].trade_max_price == 50.0
    assert get_views(store_v7, "active_scope")["active_scope"]["mode"] == "LIVE"

    shown = store_v7.run_cli("scope")
    assert shown.returncode == 0, shown.stderr
    assert "active scope: LIVE/acct-1" in shown.stdout
    assert "SIM/paper: 1 open position(s)" in shown.stdout and "LIVE/acct-2: 1 open position(s)" in shown.stdout
    switched = store_v7.run_cli("scope", "SIM", "paper", "--reason", "back to paper")
    assert switched.returncode == 0, switched.stderr

    # The switch survives a restart, and so does every scope's position, unchanged.
    store_v7.kill("state_writer", signal.SIGTERM)
    assert integrity_ok(store_v7)
    store_v7.start_writer()
    assert get_views(store_v7, "active_scope")["active_scope"]["mode"] == "SIM"
    assert open_positions(store_v7) == pos
    assert rows(store_v7, TradeRecordRow) == []
    switches = rows(store_v7, PositionEventRow, PositionEventRow.kind == "scope_switch")
    assert [(e.mode, e.account) for e in switches] == [LIVE1, SIM]
    assert json.loads(switches[1].detail)["reason"] == "back to paper"
    listed = store_v7.run_cli("positions", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {(p["mode"], p["account"], p["symbol"]) for p in json.loads(listed.stdout)} == set(pos)
    text = store_v7.run_cli("positions", "--mode", "LIVE")
    assert "acct-1" in text.stdout and "acct-2" in text.stdout and "paper" not in text.stdout
