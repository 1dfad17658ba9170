"""The rest of the writer's in-memory state (actors/state_writer/state.py), in process.

Documents, the kept messages (heartbeats, pending intents, NAV curve, peak reset, entry halts), the
snapshot keys and dump/load with the version-1 upgrade. Exact values and bounds, so the mutation run
(tools/mutation.py streams, which mutates the whole of state.py) can afford them per mutant.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.state_writer.state import (
    HEARTBEAT_ACTORS_MAX,
    NAV_HISTORY_MAX,
    PENDING_INTENTS_MAX,
    WriterState,
)
from bus.messages import STATE_DOCUMENTS, NavState
from bus.messages.legacy_v1 import V1Upgrader
from tests import SIM_SCOPE
from tests.support.messages import heartbeat, intent, kpis

T0 = datetime(2026, 1, 1, tzinfo=UTC)
E0 = T0.timestamp()


def nav(at: float, value: float = 100.0, peak: float = 200.0, dd: float = 0.5) -> dict[str, Any]:
    """A nav_state as the journal holds it, `at` seconds after T0."""
    return NavState(scope=SIM_SCOPE, updated_at=T0 + timedelta(seconds=at), nav_total=value, aum=value,
                    peak_nav=peak, dd_pct=dd, dd_state="NORMAL").to_wire()


def replay(state: WriterState, seq: int, msg: dict[str, Any], state_key: str | None = None) -> None:
    state.apply(seq, "x", 1, seq, msg, state_key)


def curve(state: WriterState) -> list[tuple[float, float]]:
    return [(p["t"] - E0, p["nav"]) for p in state.nav_history]


# ---- documents ------------------------------------------------------------------------------------

def test_a_document_is_rendered_once_when_read() -> None:
    state = WriterState()
    doc = kpis()
    state.apply_message(3, "executor", 1, 1, doc)
    assert state.seq == 3
    first = state.document("kpis_v7")
    assert first == doc.to_document()
    assert state.document("kpis_v7") is first  # rendered once, kept as a dict
    assert state.documents() == {"kpis_v7": first}
    assert state.document("positions_state") is None
    state.apply_message(4, "executor", 1, 2, heartbeat("executor"))  # not a document
    assert state.documents() == {"kpis_v7": first}


def test_a_replayed_document_drops_its_tags_and_a_replacement_wins() -> None:
    state = WriterState()
    replay(state, 5, {"type": "kpis_v7", "v": 2, "portfolio": {"nav": 1.0}}, "kpis_v7")
    replay(state, 6, {"type": "kpis_v7", "v": 2, "portfolio": {"nav": 2.0}})  # no state key: not a document
    assert (state.seq, state.documents()) == (6, {"kpis_v7": {"portfolio": {"nav": 1.0}}})
    state.replace_document("kpis_v7", {"x": 1})
    assert state.documents() == {"kpis_v7": {"x": 1}}


# ---- kept messages ----------------------------------------------------------------------------------

def test_heartbeats_keep_the_newest_per_actor_least_recently_heard_first() -> None:
    state = WriterState()
    a, b = heartbeat("executor", pid=1), heartbeat("router", pid=2)
    state.apply_message(1, "executor", 1, 1, a)
    state.apply_message(2, "router", 1, 1, b)
    state.apply_message(3, "executor", 1, 2, a)
    assert list(state.heartbeats.items()) == [("router", {**b.to_wire(), "seq": 2}),
                                              ("executor", {**a.to_wire(), "seq": 3})]


def test_heartbeat_actors_are_bounded() -> None:
    state = WriterState()
    for i in range(HEARTBEAT_ACTORS_MAX + 1):
        replay(state, i + 1, {"type": "heartbeat", "actor": f"a{i}"})
    assert HEARTBEAT_ACTORS_MAX == 1024
    assert len(state.heartbeats) == 1024
    assert next(iter(state.heartbeats)) == "a1"
    assert state.heartbeats["a1024"] == {"type": "heartbeat", "actor": "a1024", "seq": 1025}


def test_pending_intents_until_the_router_marks_the_last_event() -> None:
    state = WriterState()
    entry = intent("i1", "BTCUSDT", "BUY", 1.0)
    state.apply_message(1, "executor", 1, 1, entry)
    replay(state, 2, {"type": "request_exit", "intent_id": "i2"})
    replay(state, 3, {"type": "order_updated", "intent_id": "i1", "intent_done": False})
    replay(state, 4, {"type": "order_updated", "intent_id": "i9", "intent_done": True})
    assert list(state.pending_intents.items()) == [("i1", {**entry.to_wire(), "seq": 1}),
                                                   ("i2", {"type": "request_exit", "intent_id": "i2", "seq": 2})]
    replay(state, 5, {"type": "order_updated", "intent_id": "i1", "intent_done": True})
    assert list(state.pending_intents) == ["i2"]
    replay(state, 6, {"type": "submit_order", "intent_id": 7})
    assert list(state.pending_intents) == ["i2", "7"]


def test_pending_intents_are_bounded() -> None:
    state = WriterState()
    for i in range(PENDING_INTENTS_MAX + 1):
        replay(state, i + 1, {"type": "submit_order", "intent_id": f"i{i}"})
    assert PENDING_INTENTS_MAX == 10_000
    assert len(state.pending_intents) == 10_000
    assert next(iter(state.pending_intents)) == "i1"


def test_the_newest_peak_reset_and_halt_per_scope_are_kept() -> None:
    state = WriterState()
    replay(state, 1, {"type": "reset_nav_peak", "reason": "deposit"})
    replay(state, 2, {"type": "halt_entries", "mode": "SIM", "account": "paper", "operator": "op"})
    replay(state, 3, {"type": "halt_entries", "mode": "LIVE", "account": "main", "operator": "op"})
    replay(state, 4, {"type": "resume_entries", "mode": "SIM", "account": "paper", "operator": "op"})
    replay(state, 5, {"type": "kpis_v7", "mode": "SIM", "account": "paper"})  # not kept
    assert state.nav_peak_reset == {"type": "reset_nav_peak", "reason": "deposit", "seq": 1}
    assert state.entry_halts == {
        "SIM/paper": {"type": "resume_entries", "mode": "SIM", "account": "paper", "operator": "op", "seq": 4},
        "LIVE/main": {"type": "halt_entries", "mode": "LIVE", "account": "main", "operator": "op", "seq": 3}}
    assert (dict(state.heartbeats), dict(state.pending_intents), list(state.nav_history)) == ({}, {}, [])


# ---- the NAV curve ------------------------------------------------------------------------------------

def test_the_nav_curve_keeps_the_newest_sample_of_each_five_seconds() -> None:
    state = WriterState()
    state.apply_message(1, "sync", 1, 1, NavState.model_validate(nav(0.0, 90.0)))
    for seq, (at, value) in enumerate([(4.0, 91.0), (5.0, 92.0), (9.5, 93.0), (9.5, 94.0), (3.0, 95.0),
                                       (10.0, 96.0), (21.0, 97.0)], start=2):
        replay(state, seq, nav(at, value))
    # 4 replaces 0 (same bucket); 3 is older than the curve's end and is dropped.
    assert curve(state) == [(4.0, 91.0), (9.5, 94.0), (10.0, 96.0), (21.0, 97.0)]
    assert state.nav_history[-1] == {"t": E0 + 21.0, "nav": 97.0, "peak": 200.0, "dd_pct": 0.5}
    assert all(type(v) is float for p in state.nav_history for v in p.values())


def test_nav_samples_without_a_readable_time_are_not_charted() -> None:
    state = WriterState()
    replay(state, 1, {**nav(0.0), "updated_at": None})
    replay(state, 2, {**nav(0.0), "updated_at": "yesterday"})
    replay(state, 3, {**nav(0.0), "updated_at": 12.0})
    assert list(state.nav_history) == []
    replay(state, 4, {**nav(0.0), "updated_at": "2026-01-01T00:00:07+01:00"})
    assert curve(state) == [(7.0 - 3600.0, 100.0)]


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone other than UTC, so a naive time read as local time would be off by hours."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_naive_sample_time_is_utc(new_york: None) -> None:
    state = WriterState()
    replay(state, 1, {**nav(0.0), "updated_at": "2026-01-01T00:00:05"})
    assert curve(state) == [(5.0, 100.0)]


def test_the_nav_curve_is_bounded() -> None:
    state = WriterState()
    for i in range(NAV_HISTORY_MAX + 1):
        replay(state, i + 1, {"type": "nav_state", "updated_at": (T0 + timedelta(seconds=5 * i)).isoformat(),
                              "nav_total": i, "peak_nav": 1, "dd_pct": 0})
    assert NAV_HISTORY_MAX == 8640
    assert len(state.nav_history) == 8640
    assert state.nav_history[0]["nav"] == 1.0


# ---- snapshot service -----------------------------------------------------------------------------------

def _filled() -> WriterState:
    state = WriterState()
    state.apply_message(1, "executor", 1, 1, kpis())
    replay(state, 2, {"type": "heartbeat", "actor": "router"})
    replay(state, 3, {"type": "submit_order", "intent_id": "i1"})
    replay(state, 4, nav(0.0))
    replay(state, 5, {"type": "reset_nav_peak", "reason": "r"})
    replay(state, 6, {"type": "halt_entries", "mode": "SIM", "account": "paper"})
    return state


def test_keys_and_views() -> None:
    state = _filled()
    assert state.keys() == [*STATE_DOCUMENTS, "heartbeats", "pending_intents", "nav_history", "nav_peak_reset",
                            "entry_halts"]
    assert state.view("kpis_v7") == state.document("kpis_v7")
    assert state.view("positions_state") is None
    assert state.view("heartbeats") == {"router": {"type": "heartbeat", "actor": "router", "seq": 2}}
    assert state.view("pending_intents") == [{"type": "submit_order", "intent_id": "i1", "seq": 3}]
    assert state.view("nav_history") == [{"t": E0, "nav": 100.0, "peak": 200.0, "dd_pct": 0.5}]
    assert state.view("nav_peak_reset") == {"type": "reset_nav_peak", "reason": "r", "seq": 5}
    assert state.view("entry_halts") == {"SIM/paper": {"type": "halt_entries", "mode": "SIM", "account": "paper",
                                                       "seq": 6}}
    with pytest.raises(KeyError) as info:
        state.view("nope")
    assert info.value.args == ("nope",)


def test_dump_and_load() -> None:
    state = _filled()
    dumped = state.dump()
    assert dumped == {
        "protocol": 2, "seq": 6, "documents": {"kpis_v7": kpis().to_document() | {
            "updated_at": dumped["documents"]["kpis_v7"]["updated_at"]}},
        "streams": [["executor", 1, 1, 1], ["x", 1, 6, 6]],
        "heartbeats": {"router": {"type": "heartbeat", "actor": "router", "seq": 2}},
        "pending_intents": [{"type": "submit_order", "intent_id": "i1", "seq": 3}],
        "nav_history": [{"t": E0, "nav": 100.0, "peak": 200.0, "dd_pct": 0.5}],
        "nav_peak_reset": {"type": "reset_nav_peak", "reason": "r", "seq": 5},
        "entry_halts": {"SIM/paper": {"type": "halt_entries", "mode": "SIM", "account": "paper", "seq": 6}}}
    assert WriterState.load(dumped).dump() == dumped
    # A version-2 dump is not upgraded, even with an upgrader at hand.
    assert WriterState.load(dumped, upgrader=V1Upgrader("LIVE", "main")).dump() == dumped


def test_load_of_a_bare_dump() -> None:
    state = WriterState.load({"seq": "7", "documents": None, "heartbeats": None, "pending_intents": None,
                              "nav_history": None, "entry_halts": None})
    assert state.dump() == {"protocol": 2, "seq": 7, "documents": {}, "streams": [], "heartbeats": {},
                            "pending_intents": [], "nav_history": [], "nav_peak_reset": None, "entry_halts": {}}
    assert WriterState.load({"seq": 7}).dump() == state.dump()
    assert WriterState.load({"seq": 7}, upgrader=V1Upgrader("SIM", "paper")).dump() == state.dump()
    assert WriterState().dump() == {**state.dump(), "seq": 0}


V1_DUMP: dict[str, Any] = {
    "seq": 9,
    "documents": {"positions_state": {"positions": [], "mode": "SIM", "account": "paper"},
                  "kpis_v7": {"portfolio": {}, "scope": {"mode": "SIM", "network": "paper", "account": "paper"}}},
    "heartbeats": {"router": {"type": "heartbeat", "v": 1, "actor": "router", "seq": 2}},
    "pending_intents": [{"type": "order_intent", "v": 1, "intent_id": 7, "seq": 3}],
    "nav_peak_reset": {"type": "nav_peak_reset", "v": 1, "reason": "r", "seq": 4},
    "entry_halts": {"SIM/paper": {"type": "halt_entries", "v": 2, "seq": 5}},
}


def test_a_version_1_dump_is_upgraded() -> None:
    state = WriterState.load(V1_DUMP, upgrader=V1Upgrader("SIM", "paper"))
    dumped = state.dump()
    assert dumped["documents"] == {
        "positions_state": {"positions": [], "scope": {"mode": "SIM", "network": "paper", "account": "paper"}},
        "kpis_v7": V1_DUMP["documents"]["kpis_v7"]}
    assert dumped["heartbeats"] == {"router": {"type": "heartbeat", "v": 2, "actor": "router", "seq": 2}}
    assert list(state.pending_intents) == ["7"]
    assert dumped["pending_intents"] == [{"type": "submit_order", "v": 2, "intent_id": 7, "seq": 3,
                                          "mode": "SIM", "account": "paper"}]
    assert dumped["nav_peak_reset"] == {"type": "reset_nav_peak", "v": 2, "reason": "r", "seq": 4}
    assert dumped["entry_halts"] == V1_DUMP["entry_halts"]
    # Without an upgrader the dump is taken as it is; a version-2 dump upgrades its documents only.
    assert WriterState.load(V1_DUMP).dump() == {**V1_DUMP, "protocol": 2, "streams": [], "nav_history": [],
                                                "pending_intents": V1_DUMP["pending_intents"]}
    v2 = WriterState.load({**V1_DUMP, "protocol": 2}, upgrader=V1Upgrader("SIM", "paper")).dump()
    assert v2["heartbeats"] == V1_DUMP["heartbeats"]
    assert v2["pending_intents"] == V1_DUMP["pending_intents"]
    assert v2["nav_peak_reset"] == V1_DUMP["nav_peak_reset"]
    assert v2["documents"] == dumped["documents"]
