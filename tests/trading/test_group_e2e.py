"""The whole trading group as real processes in a temp instance: positions open and close on
their own, every state file validates, PnL adds up, KPIs use sync's NAV, every position has
TP/SL, and restarts of the paper exchange and of the state writer lose nothing.

The tests run in order against one group (module scope) to keep the suite fast.
"""

from __future__ import annotations

import json
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from actors.state_writer.store.reader import StoreReader
from bus.messages import (
    ExitScanCompleted,
    Kpis,
    NavState,
    OrderFilled,
    PositionsLedger,
    PositionsState,
    RequestExit,
    SubmitOrder,
)
from exchange.client import RpcExchange
from tests.harness import Instance, instance
from tests.trading.group import (
    STARTING_BALANCE,
    TRADING_ACTORS,
    Committed,
    committed,
    configure_fast,
    of_type,
    start_group,
)

SEVEN_FILES = ("positions_state", "positions_ledger", "kpis_v7", "nav_state", "risk_snapshot", "router_state",
               "factor_diagnostics")


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with instance(tmp_path_factory.mktemp("group")) as inst:
        configure_fast(inst)
        start_group(inst)
        yield inst


def alive(inst: Instance) -> dict[str, int | None]:
    return {name: proc.poll() for name, proc in inst.procs.items()}


def closed_exits(records: list[Committed]) -> list[RequestExit]:
    done = {r.msg.intent_id: r.msg for r in of_type(records, "order_updated") if r.msg.intent_done}
    return [r.msg for r in of_type(records, "request_exit")
            if r.msg.intent_id in done and done[r.msg.intent_id].status == "FILLED"]


def test_positions_open_and_close_and_every_file_validates(group: Instance) -> None:
    def traded() -> bool:
        records = committed(group)
        entries = [r for r in of_type(records, "order_updated")
                   if r.msg.intent_done and r.msg.intent_id.startswith("en-") and r.msg.filled_qty > 0]
        return len(entries) >= 3 and len(closed_exits(records)) >= 2

    group.wait_for(traded, 120, "entries to fill and positions to close by TP/SL/TTL", interval=1.0)
    assert all(code is None for code in alive(group).values()), alive(group)
    result = group.run_cli("validate")
    assert result.returncode == 0, result.stdout
    for key in SEVEN_FILES:
        assert f"ok   {key}.json" in result.stdout, result.stdout
    # ... and they keep updating.
    before = {k: json.loads((group.state_dir / f"{k}.json").read_text())["updated_at"] for k in SEVEN_FILES}
    group.wait_for(lambda: all(json.loads((group.state_dir / f"{k}.json").read_text())["updated_at"] != before[k]
                               for k in SEVEN_FILES), 15, "every state file to update again")
    reasons = {t.reason for t in closed_exits(committed(group))}
    assert reasons <= {"TP", "SL", "TTL"} and reasons
    # Sync's read-only mirror (seed 002) carries the same documents, fed from the bus.
    mirror = group.run_cli("validate", str(group.settings.mirror_path))
    for key in SEVEN_FILES:
        assert f"ok   {key}.json" in mirror.stdout, mirror.stdout


def test_closed_trade_pnl_matches_fills_and_fees(group: Instance) -> None:
    records = committed(group)
    fills = [r.msg for r in of_type(records, "order_filled")]
    assert fills
    for fill in fills:  # the exchange's fee schedule: 2 bps maker, 5 bps taker
        rate = 2 if fill.liquidity == "maker" else 5
        assert fill.fee == pytest.approx(fill.qty * fill.price * rate / 10_000, rel=1e-6)
    by_position: dict[str, list[OrderFilled]] = defaultdict(list)
    for fill in {f.trade_id: f for f in fills}.values():
        by_position[fill.position_id or ""].append(fill)
    reader = StoreReader(group.settings)
    try:
        today = datetime.now(UTC).date()
        trades = {t.position_id: t for day in (today - timedelta(days=1), today) for t in reader.trades(day)}
    finally:
        reader.close()
    checked = stored = 0
    for exit_ in closed_exits(records):
        trade = sorted(by_position[exit_.position_id], key=lambda f: f.ts)
        entries = [f for f in trade if not f.reduce_only]
        exits = [f for f in trade if f.reduce_only]
        entry_qty = sum(f.qty for f in entries)
        if not entries or abs(sum(f.qty for f in exits) - entry_qty) > 1e-9 or entries[-1].ts > exits[0].ts:
            continue  # a trade whose entry was cut short by its exit; the next one is checked
        direction = 1 if entries[0].side == "BUY" else -1
        avg_entry = sum(f.qty * f.price for f in entries) / entry_qty
        expected = sum((f.price - avg_entry) * f.qty * direction for f in exits)
        reported = sum(f.realized_pnl or 0.0 for f in exits)
        assert reported == pytest.approx(expected, abs=1e-6 * entry_qty * avg_entry)
        assert all(f.fee > 0 for f in trade)
        checked += 1
        # The closed trade as the positions store recorded it: gross from the fills, fees of both legs.
        record = trades.get(exit_.position_id)
        if record is not None:
            assert record.realized_gross == pytest.approx(expected, abs=1e-6 * entry_qty * avg_entry)
            assert record.fees == pytest.approx(sum(f.fee for f in trade), abs=1e-9)
            assert record.realized_net == pytest.approx(expected - record.fees, abs=1e-6 * entry_qty * avg_entry)
            assert record.qty == pytest.approx(entry_qty) and record.entry_price == pytest.approx(avg_entry)
            stored += 1
    assert checked >= 1 and stored >= 1
    # The exchange's wallet is the starting balance plus every fill's realized PnL minus its fee.
    exchange = RpcExchange(group.settings)
    try:
        history = exchange.fetch_fills(limit=10_000)
        balance = exchange.fetch_balance()
        after = exchange.fetch_fills(since=history[-1].ts, limit=10_000)
    finally:
        exchange.close()
    if {f.trade_id for f in after} <= {f.trade_id for f in history}:  # no fill between the two reads
        expected_wallet = STARTING_BALANCE + sum(f.realized_pnl - f.fee for f in history)
        assert balance.wallet_balance == pytest.approx(expected_wallet, abs=1e-6)


def test_kpi_nav_is_the_nav_state_nav(group: Instance) -> None:
    records = committed(group)
    navs: list[NavState] = []
    kpis = 0
    for record in records:
        msg = record.msg
        if isinstance(msg, NavState):
            navs.append(msg)
        elif isinstance(msg, Kpis):
            kpis += 1
            # Built from a NAV sample committed before it: same nav, drawdown and state.
            source = [n for n in navs if n.nav_total == msg.portfolio.nav]
            assert source, f"KPI nav {msg.portfolio.nav} matches no earlier nav_state"
            assert msg.nav.nav_total == msg.portfolio.nav
            assert msg.portfolio.dd_pct == source[-1].dd_pct and msg.risk.dd_state == source[-1].dd_state
            for block in ("nav", "risk", "router", "performance"):
                assert block in msg.to_document()
    assert kpis > 10
    kpi_file = json.loads((group.state_dir / "kpis_v7.json").read_text())
    assert kpi_file["portfolio"]["nav"] in {n.nav_total for n in navs} | {
        json.loads((group.state_dir / "nav_state.json").read_text())["nav_total"]}
    assert kpi_file["router"]["maker_fill_share"] is not None


def test_every_open_position_has_tp_sl_in_the_ledger(group: Instance) -> None:
    records = committed(group)
    ledger_list = [r.msg for r in of_type(records, "positions_ledger")]
    ledgers = {m.updated_at: m for m in ledger_list}
    pairs = lagging = 0
    for record in of_type(records, "positions_state"):
        snap: PositionsState = record.msg
        ledger: PositionsLedger | None = ledgers.get(snap.updated_at)  # published by the same executor loop
        if ledger is None or not snap.positions:
            continue
        pairs += 1
        entries = {e.symbol: e for e in ledger.entries}
        for row in snap.positions:
            entry = entries.get(row.symbol)
            if entry is None or entry.qty != row.qty:
                # The rows are the exchange's; the ledger is the store's committed fills. A fill the
                # exchange has reported but the hub has not yet committed shows in the next ledgers.
                lagging += 1
                later = [m for m in ledger_list if m.updated_at > snap.updated_at]
                assert any(e.symbol == row.symbol and e.qty == row.qty for m in later[:20] for e in m.entries) or \
                    any(r.msg.updated_at > snap.updated_at and all(x.symbol != row.symbol or x.qty != row.qty
                                                                   for x in r.msg.positions)
                        for r in of_type(records, "positions_state")), (row, "never reached the ledger")
                continue
            assert entry.tp is not None and entry.sl is not None, entry
            assert entry.side == row.side and entry.qty == row.qty
            above, below = (entry.tp, entry.sl) if row.side == "LONG" else (entry.sl, entry.tp)
            assert above > below
            assert ledger.tp_sl_levels[row.symbol].tp == entry.tp
    assert pairs > 5 and lagging <= pairs // 4, (pairs, lagging)
    scans = [r.msg for r in of_type(records, "exit_scan_completed")]
    busy = [s for s in scans if s.open_positions_count > 0]
    assert busy and all(isinstance(s, ExitScanCompleted) and s.tp_sl_coverage_pct == 1.0 for s in busy)


def test_paper_exchange_restart_keeps_the_account(group: Instance) -> None:
    exchange = RpcExchange(group.settings)
    try:
        positions_before = {(p.symbol, p.side, p.qty, p.entry_price) for p in exchange.fetch_positions()}
        fills_before = {f.trade_id for f in exchange.fetch_fills(limit=10_000)}
        group.kill("exchange", signal.SIGKILL)
        group.start("exchange")
        group.wait_for(lambda: _pings(exchange), 30, "the paper exchange to answer again")
        fills_after = exchange.fetch_fills(limit=10_000)
        positions_after = {(p.symbol, p.side, p.qty, p.entry_price) for p in exchange.fetch_positions()}
        balance = exchange.fetch_balance()
    finally:
        exchange.close()
    assert fills_before <= {f.trade_id for f in fills_after}
    new = [f for f in fills_after if f.trade_id not in fills_before]
    if not new:  # nothing traded since the restart: the account is exactly what it was
        assert positions_after == positions_before
    assert balance.wallet_balance == pytest.approx(
        STARTING_BALANCE + sum(f.realized_pnl - f.fee for f in fills_after), abs=1e-6)
    # The trading actors rode it out and the state keeps flowing.
    assert all(code is None for code in alive(group).values()), alive(group)
    mark = time.time()
    group.wait_for(lambda: _updated_after(group, "positions_state", mark), 20, "positions_state after the restart")


def test_executor_and_exit_scanner_crash_keep_positions_and_brackets(group: Instance) -> None:
    ledger_path = group.state_dir / "positions_ledger.json"
    group.wait_for(lambda: bool(json.loads(ledger_path.read_text())["entries"]), 60, "an open position")
    before = {e["symbol"]: e for e in json.loads(ledger_path.read_text())["entries"]}
    group.kill("executor", signal.SIGKILL)
    group.kill("exit_scanner", signal.SIGKILL)
    group.start("executor")
    group.start("exit_scanner")
    restarted = time.time()
    group.wait_for(lambda: _updated_after(group, "positions_ledger", restarted), 30, "the ledger after the restart")
    after = {e["symbol"]: e for e in json.loads(ledger_path.read_text())["entries"]}
    kept = [s for s in before.keys() & after.keys() if before[s]["entry_price"] == after[s]["entry_price"]]
    for symbol in kept:  # the same position, still open: restored, not re-planned
        for field in ("position_id", "side", "tp", "sl", "ttl_ts"):
            assert after[symbol][field] == before[symbol][field], (symbol, field)
    for entry in after.values():
        assert entry["tp"] is not None and entry["sl"] is not None
    log_since_restart = group.logs("executor").split("restored")[-1]
    assert not [s for s in kept if f"adopted unplanned {before[s]['side']} {s} " in log_since_restart]

    # The restarted exit scanner covers every open position again. (A position whose entry was
    # sent after the last ledger publish is adopted with a fresh bracket, so a scan or two may
    # show it missing first.)
    def covered() -> bool:
        scans = [r.msg for r in of_type(committed(group), "exit_scan_completed") if r.msg.ts.timestamp() > restarted]
        return len(scans) >= 3 and all(s.tp_sl_missing_count == 0 for s in scans[-3:])

    group.wait_for(covered, 30, "exit scans with full TP/SL coverage after the restart")


def _pings(exchange: RpcExchange) -> bool:
    try:
        return exchange.ping()
    except Exception:
        return False


def _updated_after(inst: Instance, key: str, epoch: float) -> bool:
    doc = json.loads((inst.state_dir / f"{key}.json").read_text())
    return datetime.fromisoformat(doc["updated_at"].replace("Z", "+00:00")).timestamp() > epoch


def test_state_writer_restart_loses_nothing(group: Instance) -> None:
    group.kill("state_writer", signal.SIGKILL)
    time.sleep(2.0)  # the actors keep trading into their outboxes meanwhile
    group.start("state_writer")
    group.wait_hub(timeout=30)
    restarted = time.time()
    for key in ("positions_state", "positions_ledger", "kpis_v7", "nav_state", "router_state"):
        group.wait_for(lambda k=key: _updated_after(group, k, restarted), 30, f"{key} to catch up")
    group.wait_for(lambda: bool(closed_exits(committed(group))), 5, "the journal to be readable")
    time.sleep(3.0)
    assert all(code is None for code in alive(group).values()), alive(group)
    # Stop the actors cleanly (each flushes its outbox), keep the writer, then audit the journal.
    for actor in ("executor", "router", "exit_scanner", "sync", "exchange"):
        assert group.kill(actor, signal.SIGTERM, wait=30) == 0, group.logs(actor)[-2000:]
    records = committed(group)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))  # gap-free
    streams: dict[tuple[str, int], list[int]] = defaultdict(list)
    for record in records:
        streams[(record.env.src, record.env.inc)].append(record.env.sseq)
    for (src, _inc), sseqs in streams.items():
        # Every message each actor sent was committed exactly once: nothing lost, nothing NACKed.
        assert sorted(sseqs) == list(range(1, max(sseqs) + 1)), f"{src} lost or repeated messages"
    assert {src for src, _inc in streams} >= set(TRADING_ACTORS)
    # And every trade the exchange made is in the journal as a OrderFilled (the exchange process is stopped).
    exchange_fills = _exchange_fill_ids(group)
    journal_fills = {r.msg.trade_id for r in of_type(records, "order_filled")}
    assert exchange_fills and exchange_fills <= journal_fills
    intents = {r.msg.intent_id for r in records if isinstance(r.msg, SubmitOrder | RequestExit)}
    assert {r.msg.intent_id for r in of_type(records, "order_updated")} <= intents | {"none"}


def _exchange_fill_ids(inst: Instance) -> set[str]:
    from exchange.paper.store import PaperStore

    store = PaperStore(inst.settings.var_path / "paper_exchange" / "exchange.db")
    try:
        return {f.trade_id for f in store.fills(None, None, 1_000_000)}
    finally:
        store.close()


def test_no_actor_died(group: Instance) -> None:
    for name in ("executor", "router", "exit_scanner", "sync", "exchange"):
        text = group.logs(name)
        assert "Traceback" not in text, f"{name}:\n{text[-3000:]}"
