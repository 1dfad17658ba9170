"""The whole trading group, kill -9 of every process at once, restart: the positions come back
exactly, the executor and exit scanner take them over with their TP/SL, and each one later
closes with realized PnL that matches its fills and MAE/MFE that covers its whole life."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest

from actors.state_writer.store.tables import FillRow, PositionEventRow, TradeRecordRow
from bus.messages import ExchangePositionsReported, ReconciliationView, ReportedPosition, StoredPosition, SubmitOrder
from exchange.client import RpcExchange
from tests.harness import Instance, instance
from tests.store.helpers import bus, integrity_ok, open_positions, table, views
from tests.trading.group import TRADING_ACTORS, committed, configure_fast, of_type, start_group

SCOPE = ("SIM", "paper")


def _mine(positions: dict[tuple[str, str, str], StoredPosition]) -> dict[str, StoredPosition]:
    return {sym: p for (mode, account, sym), p in positions.items() if (mode, account) == SCOPE}


def test_kill9_everything_then_identical_positions_and_whole_trade_close(tmp_path: Path) -> None:
    with instance(tmp_path) as inst:
        configure_fast(inst)  # positions live at most 8 s (TTL), so they close soon after the restart
        start_group(inst)
        inst.wait_for(lambda: len(_mine(open_positions(inst))) >= 2, 120, "two open positions", interval=0.5)
        before = _mine(open_positions(inst))

        # kill -9 every process at once, the state writer and the exchange included.
        for proc in inst.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        for proc in inst.procs.values():
            proc.wait(timeout=10)
        assert integrity_ok(inst)

        # The store, recovered alone, holds exactly what the committed fills add up to.
        inst.start_writer()
        recovered = _mine(open_positions(inst))
        expected = _net_of_committed_fills(inst)
        assert recovered, "the crash left nothing open to recover"
        assert set(recovered) == set(expected)
        for sym, p in recovered.items():
            side, qty, entry, intent = expected[sym]
            assert (p.side, p.qty, p.position_id) == (side, pytest.approx(qty), intent.position_id)
            assert p.entry_price == pytest.approx(entry, rel=1e-9)
            assert (p.tp, p.sl, p.ttl_ts) == (intent.tp, intent.sl, intent.ttl_ts)
        survivors = {s: p for s, p in recovered.items() if s in before and before[s].position_id == p.position_id}
        for sym, p in survivors.items():
            b = before[sym]
            assert (p.tp, p.sl, p.ttl_ts, p.entry_time) == (b.tp, b.sl, b.ttl_ts, b.entry_time)
            # Extremes only widen: everything seen before the crash is still in them.
            assert p.trade_min_price <= b.trade_min_price and p.trade_max_price >= b.trade_max_price

        # The rest of the group takes the positions over from the store: same ids, same brackets.
        for actor in TRADING_ACTORS:
            inst.start(actor)
        ledger_path = inst.state_dir / "positions_ledger.json"

        def taken_over() -> bool:
            entries = {e["symbol"]: e for e in json.loads(ledger_path.read_text())["entries"]}
            return all(s in entries or s not in _mine(open_positions(inst)) for s in recovered) and any(
                s in entries for s in recovered)

        inst.wait_for(taken_over, 60, "the executor to publish the recovered positions", interval=0.5)
        # Fills the exchange made but the crash kept from the hub come back with the resumed
        # intents (once: by trade id), and the store agrees with the exchange again.
        inst.wait_for(lambda: _agrees_with_exchange(inst), 60, "the store to match the exchange", interval=0.5)
        entries = {e["symbol"]: e for e in json.loads(ledger_path.read_text())["entries"]}
        for sym, e in entries.items():
            if sym in recovered and e["position_id"] == recovered[sym].position_id:
                assert (e["tp"], e["sl"]) == (recovered[sym].tp, recovered[sym].sl)
        assert "adopted unplanned" not in inst.logs("executor")

        # Every recovered position closes (TP, SL or TTL) and its trade adds up.
        ids = {p.position_id: p for p in recovered.values()}

        def closed() -> dict[str, TradeRecordRow]:
            return {t.position_id: t for t in table(inst, TradeRecordRow) if t.position_id in ids}

        inst.wait_for(lambda: len(closed()) == len(ids), 90, "every recovered position to close", interval=1.0)
        fills = {f.trade_id: f for f in table(inst, FillRow)}
        for pid, trade in closed().items():
            events = table(inst, PositionEventRow, PositionEventRow.position_id == pid,
                           PositionEventRow.trade_id.is_not(None))
            opening = [fills[e.trade_id] for e in events if e.kind in ("open", "add")]
            closing = [fills[e.trade_id] for e in events if e.kind in ("reduce", "close")]
            qty = sum(f.qty for f in opening)
            entry = sum(f.qty * f.price for f in opening) / qty
            direction = 1 if trade.side == "LONG" else -1
            gross = sum((f.price - entry) * f.qty * direction for f in closing)
            fees = sum(f.fee for f in opening + closing)
            assert (trade.qty, trade.entry_price) == (pytest.approx(qty), pytest.approx(entry))
            assert trade.gross_pnl == pytest.approx(gross, abs=1e-9 * qty * entry)
            assert trade.fees == pytest.approx(fees, abs=1e-12)
            assert trade.realized_pnl == pytest.approx(gross - fees, abs=1e-9 * qty * entry)
            pre = ids[pid]
            assert trade.trade_min_price <= pre.trade_min_price and trade.trade_max_price >= pre.trade_max_price
            adverse = (entry - trade.trade_min_price) if trade.side == "LONG" else (trade.trade_max_price - entry)
            favourable = (trade.trade_max_price - entry) if trade.side == "LONG" else (entry - trade.trade_min_price)
            peak = max(e.qty_after or 0.0 for e in events)
            assert trade.mae == pytest.approx(max(0.0, adverse) * peak, rel=1e-9, abs=1e-12)
            assert trade.mfe == pytest.approx(max(0.0, favourable) * peak, rel=1e-9, abs=1e-12)

        # Both executor starts reconciled the store with the exchange, and found no mismatch:
        # not even right after the crash, when the exchange was ahead of the store.
        checked = [json.loads(e.detail) for e in table(inst, PositionEventRow,
                                                       PositionEventRow.kind == "reconcile_checked")]
        assert len([c for c in checked if c["trigger"] == "start"]) == 2
        assert all(c["mismatches"] == [] for c in checked), checked
        view = ReconciliationView.model_validate(views(inst, "reconciliation")["reconciliation"])
        assert view.issues == []
        kpis = json.loads((inst.state_dir / "kpis_v7.json").read_text())
        assert [(s["mode"], s["account"]) for s in kpis["pnl_today"]] == [SCOPE]

        # A mismatch (policy warn) blocks new entries on its symbol until the operator resolves it.
        def flag_all() -> bool:
            with bus(inst, "auditor") as b:
                b.send(ExchangePositionsReported(
                    mode="SIM", account="paper", exchange_ok=True, symbols=list(inst.settings.symbols),
                    positions=[ReportedPosition(symbol=s, side="SHORT", qty=123.0, entry_price=1.0)
                               for s in inst.settings.symbols]))
            return bool(ReconciliationView.model_validate(views(inst, "reconciliation")["reconciliation"]).issues)

        inst.wait_for(flag_all, 30, "a mismatch to be flagged", interval=0.5)
        flagged_at = max(r.seq for r in committed(inst))

        def vetoed() -> bool:
            return any(r.seq > flagged_at and r.msg.reason == "reconciliation_mismatch"
                       for r in of_type(committed(inst), "entry_vetoed"))

        inst.wait_for(vetoed, 60, "the executor to veto an entry on a flagged symbol", interval=0.5)
        view = ReconciliationView.model_validate(views(inst, "reconciliation")["reconciliation"])
        blocked = {i.symbol for i in view.issues}
        entries_after = [r.msg for r in of_type(committed(inst), "submit_order")
                         if r.seq > flagged_at and r.msg.purpose == "entry"]
        assert not [i for i in entries_after if i.symbol in blocked]
        for symbol in blocked:
            done = inst.run_cli("reconcile", "resolve", symbol, "--action", "keep_store", "--operator", "test")
            assert done.returncode == 0, done.stderr
        assert ReconciliationView.model_validate(views(inst, "reconciliation")["reconciliation"]).issues == []
        for actor in ("executor", "router", "exit_scanner", "sync", "exchange"):
            inst.kill(actor, signal.SIGTERM, wait=30)
        assert integrity_ok(inst)


def _net_of_committed_fills(inst: Instance) -> dict[str, tuple[str, float, float, SubmitOrder]]:
    """symbol -> (side, qty, average entry, opening intent), netting every committed fill in seq order."""
    records = committed(inst)
    intents = {r.msg.intent_id: r.msg for r in of_type(records, "submit_order")}
    book: dict[str, tuple[float, float, SubmitOrder | None]] = {}  # signed qty, entry, opening intent
    seen: set[str] = set()
    for record in of_type(records, "order_filled"):
        f = record.msg
        if (f.mode, f.account) != SCOPE or f.trade_id in seen:
            continue
        seen.add(f.trade_id)
        signed = f.qty if f.side == "BUY" else -f.qty
        net, entry, opener = book.get(f.symbol, (0.0, 0.0, None))
        if abs(net) < 1e-12 or (net > 0) == (signed > 0):  # open or add
            total = net + signed
            entry = f.price if abs(net) < 1e-12 else (entry * abs(net) + f.price * f.qty) / abs(total)
            opener = intents.get(f.intent_id) if abs(net) < 1e-12 else opener
            book[f.symbol] = (total, entry, opener)
        else:  # reduce (reduce-only exits never flip)
            book[f.symbol] = (net + signed, entry, opener)
    return {sym: ("LONG" if net > 0 else "SHORT", abs(net), entry, opener)  # type: ignore[misc]
            for sym, (net, entry, opener) in book.items() if abs(net) > 1e-9}


def _agrees_with_exchange(inst: Instance) -> bool:
    exchange = RpcExchange(inst.settings)
    try:
        venue = {p.symbol: (p.side, round(p.qty, 9)) for p in exchange.fetch_positions()}
    except Exception:
        return False
    finally:
        exchange.close()
    return venue == {s: (p.side, round(p.qty, 9)) for s, p in _mine(open_positions(inst)).items()}
