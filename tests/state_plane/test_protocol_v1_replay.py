"""A journal and a snapshot written by the protocol-version-1 hub still recover under version 2.

The fixtures (tests/fixtures/protocol_v1/) were written by the version-1 hub itself: 27
records of every version-1 message type, and the snapshot it wrote over them. Version 2
renamed every type and made mode and account required; recovery upgrades each record.
The state served afterwards must be what version 1 served, in version-2 form.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bus.messages import STATE_DOCUMENTS
from bus.messages.legacy_v1 import V1_TYPES
from bus.subscriber import request_snapshot
from tests.harness import instance

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "protocol_v1"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected_state.json").read_text())


def _v2(msg: dict[str, Any]) -> dict[str, Any]:
    """A version-1 wire dict as version 2 names it (the hub adds `seq` to kept messages)."""
    return {**msg, "type": V1_TYPES[msg["type"]], "v": 2}


def _recovered(tmp_path: Path, what: str) -> dict[str, Any]:
    with instance(tmp_path) as inst:
        journal = inst.home / "logs" / "journal"
        journal.mkdir(parents=True)
        for path in (FIXTURE / what).iterdir():
            shutil.copy(path, journal / path.name)
        inst.start_writer()
        state = request_snapshot(inst.settings, timeout_s=10).state
        assert "does not validate" not in inst.logs("state_writer")
        return state


# The store's views name gross and net realized P&L apart since version 1 was recorded.
_VIEW_RENAMES = {"realized_pnl": "realized_gross", "gross_pnl": "realized_gross"}


def _renamed(view: Any) -> Any:
    """A version-1 store view with today's field names (a closed trade's realized_pnl was net)."""
    if isinstance(view, list):
        return [_renamed(v) for v in view]
    if not isinstance(view, dict):
        return view
    if "gross_pnl" in view:  # a closed trade
        view = {**view, "realized_net": view["realized_pnl"]}
        view.pop("realized_pnl")
    return {_VIEW_RENAMES.get(k, k): v for k, v in view.items()}


def _check_documents(state: dict[str, Any]) -> None:
    for key in ("positions_state", "positions_ledger", "kpis_v7", "nav_state", "risk_snapshot", "router_state",
                "runtime_diagnostics", "factor_diagnostics"):
        expected = dict(EXPECTED[key])
        got = dict(state[key])
        # Version 1 documents had no scope (positions and ledger could say mode/account, or null
        # for "the active one"): the upgrade names the scope they were written for.
        assert got["scope"] == {"mode": "SIM", "network": "paper", "account": "paper"}, key
        expected.pop("mode", None)
        expected.pop("account", None)
        expected["scope"] = got["scope"]
        # What version 1 served, in version-2 form (fields added since take their defaults).
        assert got == STATE_DOCUMENTS[key].model_validate(expected).to_document(), key


def _check_kept(state: dict[str, Any]) -> None:
    assert state["pending_intents"] == [_v2(i) for i in EXPECTED["pending_intents"]]
    assert [i["type"] for i in state["pending_intents"]] == ["submit_order", "request_exit"]
    assert state["heartbeats"] == {a: _v2(h) for a, h in EXPECTED["heartbeats"].items()}
    assert state["nav_peak_reset"] == _v2(EXPECTED["nav_peak_reset"])
    assert state["nav_history"] == EXPECTED["nav_history"]


def test_a_version_1_journal_replays(tmp_path: Path) -> None:
    state = _recovered(tmp_path, "journal")
    _check_documents(state)
    _check_kept(state)
    # The positions store is rebuilt from the journal alone (fresh database): same positions,
    # same scope, same reconciliation and import records as version 1 had.
    for key in ("open_positions", "active_scope", "reconciliation", "legacy_imports", "trades_today"):
        assert state[key] == _renamed(EXPECTED[key]), key
    assert [p["symbol"] for p in state["open_positions"]] == ["SOLUSDT", "BTCUSDT", "ETHUSDT"]


def test_a_version_1_snapshot_loads(tmp_path: Path) -> None:
    state = _recovered(tmp_path, "snapshot")
    _check_documents(state)
    _check_kept(state)


@pytest.mark.parametrize("old", sorted(V1_TYPES))
def test_every_version_1_type_has_a_version_2_type(old: str) -> None:
    from bus.messages import REGISTRY

    assert 2 in REGISTRY[V1_TYPES[old]]


def test_version_1_messages_are_refused_on_ingest(tmp_path: Path) -> None:
    from tests.state_plane.helpers import RawClient, envelope

    with instance(tmp_path) as inst:
        inst.start_writer()
        client = RawClient(inst)
        try:
            reply = client.ask(envelope({"type": "order_intent", "v": 1, "intent_id": "x", "symbol": "BTCUSDT",
                                         "side": "BUY", "qty": 1.0}, src="executor"))
            assert reply[:3] == ["N", 1, "unknown_type"], reply
            reply = client.ask(envelope({"type": "heartbeat", "v": 1, "actor": "executor", "pid": 1,
                                         "started_at": "2025-01-01T00:00:00Z", "interval_s": 1.0},
                                        src="executor", sseq=2))
            assert reply[:3] == ["N", 2, "unsupported_version"], reply
        finally:
            client.close()
