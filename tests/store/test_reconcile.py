"""Reconciliation: store vs exchange. Never silently overwritten; missing exchange data never means flat."""

from __future__ import annotations

import json
import signal

import pytest

from actors.state_writer.store.tables import PositionEventRow, ReconciliationIssueRow, TradeRecordRow
from bus.messages import ExchangePositionsReported, OrderUpdated, ReconciliationView, ReportedPosition
from tests.harness import Instance
from tests.store.helpers import Backend, bus, configure, open_positions
from tests.store.helpers import table as rows
from tests.store.helpers import views as get_views
from tests.support.messages import fill, intent, marks
from tests.support.metrics import metric

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def _exchange(**positions: tuple[str, float, float, float]) -> list[ReportedPosition]:
    return [ReportedPosition(symbol=s, side=side, qty=q, entry_price=e, mark_price=m)  # type: ignore[arg-type]
            for s, (side, q, e, m) in positions.items()]


def mismatched() -> ExchangePositionsReported:
    """store: BTC LONG 1, ETH LONG 2. exchange (read now): ETH LONG 1.5, SOL SHORT 3: one mismatch of each kind."""
    return ExchangePositionsReported(
        mode="SIM", account="paper", trigger="start", exchange_ok=True, symbols=SYMBOLS,
        positions=_exchange(ETHUSDT=("LONG", 1.5, 50.5, 51.0), SOLUSDT=("SHORT", 3.0, 20.0, 19.5)))


def done(intent_id: str, symbol: str, side: str, qty: float, **kw: str) -> OrderUpdated:
    """The router's last event of an intent: its fills are all committed before this."""
    kw.setdefault("mode", "SIM")
    kw.setdefault("account", "paper")
    return OrderUpdated(intent_id=intent_id, order_id=f"o-{intent_id}", symbol=symbol, side=side, status="FILLED",
                        order_type="MARKET", qty=qty, filled_qty=qty, intent_done=True, **kw)


def _open_book(inst: Instance) -> None:
    with bus(inst) as b:
        b.send(intent("i-btc", "BTCUSDT", "BUY", 1.0, tp=120.0, sl=90.0),
               fill("t1", "i-btc", "BTCUSDT", "BUY", 1.0, 100.0), done("i-btc", "BTCUSDT", "BUY", 1.0),
               intent("i-eth", "ETHUSDT", "BUY", 2.0), fill("t2", "i-eth", "ETHUSDT", "BUY", 2.0, 50.0),
               done("i-eth", "ETHUSDT", "BUY", 2.0),
               intent("l-btc", "BTCUSDT", "BUY", 1.0, mode="LIVE", account="main"),
               fill("t3", "l-btc", "BTCUSDT", "BUY", 1.0, 100.0, mode="LIVE", account="main"),
               done("l-btc", "BTCUSDT", "BUY", 1.0, mode="LIVE", account="main"),
               marks(BTCUSDT=103.0, ETHUSDT=49.0))


def _view(inst: Instance) -> ReconciliationView:
    return ReconciliationView.model_validate(get_views(inst, "reconciliation")["reconciliation"])


def _events(inst: Instance, kind: str) -> list[PositionEventRow]:
    return rows(inst, PositionEventRow, PositionEventRow.kind == kind)


def test_warn_flags_each_mismatch_blocks_symbols_and_the_operator_resolves(
    store_v7: Instance, backend: Backend
) -> None:
    store_v7.start_writer()
    _open_book(store_v7)
    before = open_positions(store_v7)
    with bus(store_v7, "executor") as b:
        b.send(mismatched())
        b.send(mismatched())  # the same mismatches again: seen, not re-raised
    view = _view(store_v7)
    kinds = {i.symbol: i.kind for i in view.issues}
    assert kinds == {"BTCUSDT": "store_only", "ETHUSDT": "qty_mismatch", "SOLUSDT": "exchange_only"}
    assert {(k.mode, k.account, k.symbol) for k in view.blocked} == {("SIM", "paper", s) for s in SYMBOLS}
    assert view.halted == [] and view.policy == "warn"
    assert all(i.last_seen_seq > i.opened_seq for i in view.issues)
    assert open_positions(store_v7) == before, "warn never changes the store"
    assert len(_events(store_v7, "reconcile_mismatch")) == 3
    assert metric(store_v7, "v7_store_reconcile_mismatches_total", policy="warn") == 3
    assert metric(store_v7, "v7_store_reconcile_open_issues") == 3

    with bus(store_v7, "executor") as b:
        # The exchange cannot be read: nothing is compared, nothing is flat.
        b.send(ExchangePositionsReported(mode="SIM", account="paper", exchange_ok=False, error="HTTP 503"))
        # Only ETH is known this time, and it agrees again; BTC is unknown, not flat.
        b.send(ExchangePositionsReported(mode="SIM", account="paper", exchange_ok=True, symbols=["ETHUSDT"],
                                    positions=_exchange(ETHUSDT=("LONG", 2.0, 50.0, 49.0))))
    assert {i.symbol for i in _view(store_v7).issues} == {"BTCUSDT", "SOLUSDT"}
    assert open_positions(store_v7) == before
    assert len(_events(store_v7, "reconcile_unavailable")) == 1
    assert metric(store_v7, "v7_store_reconcile_reports_total", result="exchange_unavailable") == 1

    listed = store_v7.run_cli("reconcile", "list")
    assert listed.returncode == 0
    assert "BTCUSDT: store_only" in listed.stdout and "SOLUSDT: exchange_only" in listed.stdout
    keep = store_v7.run_cli("reconcile", "resolve", "btcusdt", "--action", "keep_store", "--operator", "alice",
                            "--note", "exchange glitch")
    assert keep.returncode == 0, keep.stderr
    adopt = store_v7.run_cli("reconcile", "resolve", "SOLUSDT", "--action", "adopt_exchange", "--operator", "bob")
    assert adopt.returncode == 0, adopt.stderr
    nothing = store_v7.run_cli("reconcile", "resolve", "ETHUSDT", "--action", "keep_store")
    assert nothing.returncode == 1 and "no open mismatch" in nothing.stderr

    view = _view(store_v7)
    assert view.issues == [] and view.blocked == []
    after = open_positions(store_v7)
    assert after[("SIM", "paper", "BTCUSDT")] == before[("SIM", "paper", "BTCUSDT")]
    sol = after[("SIM", "paper", "SOLUSDT")]
    assert (sol.side, sol.qty, sol.entry_price, sol.source) == ("SHORT", 3.0, 20.0, "reconcile")
    assert after[("LIVE", "main", "BTCUSDT")] == before[("LIVE", "main", "BTCUSDT")]
    resolved = [json.loads(e.detail) for e in _events(store_v7, "reconcile_resolved")]
    assert [(d["resolution"], d["resolved_by"]) for d in resolved] == [
        ("agreed", "executor"), ("keep_store", "alice"), ("adopt_exchange", "bob")]
    assert resolved[1]["note"] == "exchange glitch"
    issue_rows = rows(store_v7, ReconciliationIssueRow)
    assert {r.status for r in issue_rows} == {"resolved"} and len(issue_rows) == 3
    assert metric(store_v7, "v7_store_reconcile_open_issues") == 0


@pytest.mark.parametrize("policy", ["adopt_exchange", "halt"])
def test_policies(store_v7: Instance, backend: Backend, policy: str) -> None:
    configure(store_v7, backend, store={"reconcile_policy": policy})
    store_v7.start_writer()
    _open_book(store_v7)
    before = open_positions(store_v7)
    with bus(store_v7, "executor") as b:
        b.send(mismatched())
    view = _view(store_v7)
    assert open_positions(store_v7) == before, "one report changes nothing, whatever the policy"
    assert {i.symbol for i in view.issues} == set(SYMBOLS)
    assert len(_events(store_v7, "reconcile_mismatch")) == 3, "every mismatch is recorded"
    if policy == "halt":
        assert [(h.mode, h.account) for h in view.halted] == [("SIM", "paper")]
        return
    assert view.halted == []
    with bus(store_v7, "executor") as b:
        b.send(mismatched())  # the second report in a row confirms: adopt
    view = _view(store_v7)
    after = open_positions(store_v7)
    assert after[("LIVE", "main", "BTCUSDT")] == before[("LIVE", "main", "BTCUSDT")]
    # adopt_exchange: the store now says what the exchange said, and the audit trail says why.
    assert view.issues == [] and view.halted == []
    assert ("SIM", "paper", "BTCUSDT") not in after
    eth, sol = after[("SIM", "paper", "ETHUSDT")], after[("SIM", "paper", "SOLUSDT")]
    assert (eth.qty, eth.entry_price, eth.position_id) == (1.5, 50.5, before[("SIM", "paper", "ETHUSDT")].position_id)
    assert (sol.side, sol.qty, sol.source) == ("SHORT", 3.0, "reconcile")
    (trade,) = rows(store_v7, TradeRecordRow)
    assert (trade.symbol, trade.close_reason, trade.exit_price) == ("BTCUSDT", "reconcile_adopt", 103.0)
    assert trade.realized_pnl == pytest.approx(3.0)
    for kind in ("reconcile_close", "reconcile_adjust", "reconcile_open"):
        assert len(_events(store_v7, kind)) == 1, kind


def test_unsettled_symbols_wait_for_the_next_report(store_v7: Instance, backend: Backend) -> None:
    """An exchange answer older than a committed fill, or a symbol with an order in flight, is not compared."""
    store_v7.start_writer()
    _open_book(store_v7)
    stale = mismatched()  # read "before" the fill below
    with bus(store_v7, "router") as b:
        b.send(intent("i-sol", "SOLUSDT", "SELL", 3.0))  # in flight: no intent_done yet
        b.send(fill("t9", "i-eth2", "ETHUSDT", "SELL", 0.5, 51.0, reduce_only=True))
    with bus(store_v7, "executor") as b:
        b.send(stale)
    assert {i.symbol for i in _view(store_v7).issues} == {"BTCUSDT"}
    (checked,) = _events(store_v7, "reconcile_checked")
    assert json.loads(checked.detail)["unsettled"] == ["ETHUSDT", "SOLUSDT"]
    with bus(store_v7, "router") as b:
        b.send(fill("t10", "i-sol", "SOLUSDT", "SELL", 3.0, 20.0), done("i-sol", "SOLUSDT", "SELL", 3.0))
    with bus(store_v7, "executor") as b:
        b.send(mismatched())  # now everything is settled: ETH 1.5 and SOL short 3 agree, BTC still differs
    assert {i.symbol for i in _view(store_v7).issues} == {"BTCUSDT"}


def test_an_order_in_flight_stays_unsettled_across_a_writer_kill_9(store_v7: Instance, backend: Backend) -> None:
    """The store applied the intent before the crash, so its replay never shows it again (no
    marks: nothing holds the replay point back); the writer's snapshotted intents in flight
    tell it the order is still working."""
    store_v7.start_writer()
    with bus(store_v7, "router") as b:
        b.send(intent("i-btc", "BTCUSDT", "BUY", 1.0), fill("t1", "i-btc", "BTCUSDT", "BUY", 1.0, 100.0),
               done("i-btc", "BTCUSDT", "BUY", 1.0),
               intent("i-sol", "SOLUSDT", "SELL", 3.0))  # in flight: no intent_done yet
    store_v7.kill("state_writer", signal.SIGKILL)
    store_v7.start_writer()
    with bus(store_v7, "executor") as b:  # the exchange already shows SOL short 3: its fill is on its way
        b.send(ExchangePositionsReported(mode="SIM", account="paper", trigger="start", exchange_ok=True,
                                         symbols=SYMBOLS, positions=_exchange(BTCUSDT=("LONG", 1.0, 100.0, 100.0),
                                                                              SOLUSDT=("SHORT", 3.0, 20.0, 20.0))))
    (checked,) = _events(store_v7, "reconcile_checked")
    assert json.loads(checked.detail)["unsettled"] == ["SOLUSDT"]
    assert _view(store_v7).issues == []
