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
from typing import Any

import pytest

from actors.state_writer.store.reader import StoreReader
from actors.state_writer.store.tables import OpenPositionRow, TradeRecordRow
from bus.messages import (
    ClosedTrade,
    ExitScanCompleted,
    Kpis,
    NavState,
    OrderFilled,
    PnlToday,
    PositionsLedger,
    PositionsState,
    RequestExit,
    RiskSnapshot,
    StoredPosition,
    SubmitOrder,
)
from exchange.client import RpcExchange
from tests.harness import Instance, instance
from tests.store.helpers import cli_json, table, views
from tests.trading.group import (
    STARTING_BALANCE,
    TRADING_ACTORS,
    Committed,
    committed,
    configure_fast,
    of_type,
    start_group,
)
from tests.truth import (
    DayFigures,
    Key,
    Truth,
    check_open_and_pnl,
    check_pnl,
    check_position,
    check_trade,
    close_enough,
    same,
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
    # The file before the journal: whatever the file says was committed before the journal is read
    # (read the other way round, a KPI document committed in between names a NAV the read missed).
    kpi_file = json.loads((group.state_dir / "kpis_v7.json").read_text())
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
    assert kpi_file["portfolio"]["nav"] in {n.nav_total for n in navs}
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
    group.start_writer(timeout=30)
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


def test_every_figure_equals_the_journal_truth(group: Instance) -> None:
    """After the run (a writer SIGKILL included): tests/truth.py recomputes P&L, fees, MAE/MFE,
    NAV and drawdown from the journal alone, and every file, view, row and CLI answer showing
    them agrees to 1e-9 relative."""
    today = datetime.now(UTC).date()
    journal = group.settings.journal_path
    truth = Truth()
    # Today's P&L as the truth had it after each commit: the executor copies the store's view
    # of some commit before its own document, so its figures must equal one of these.
    at_seq: dict[int, dict[Key, DayFigures]] = {}
    docs: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    book_at: dict[int, dict[str, tuple[str, float, float]]] = {0: {}}  # open positions after each fill
    for seq, env in truth.replay(journal):
        kind = env["msg"]["type"]
        if kind in ("order_filled", "positions_state"):
            at_seq[seq] = truth.day(today, today=True)
        if kind == "order_filled":
            book_at[seq] = {k[2]: (t.side, t.qty, t.entry) for k, t in truth.open.items() if k[:2] == ("SIM", "paper")}
        if kind in ("kpis_v7", "nav_state", "risk_snapshot", "positions_state", "positions_ledger"):
            docs[kind].append((seq, env["msg"]))
    assert truth.fills > 5 and truth.closed, "the run traded too little to check anything"
    if any(t.entry_time is not None and t.entry_time.date() != today for t in [*truth.closed, *truth.open.values()]):
        pytest.skip("the run crossed a UTC midnight: day figures are checked by tests/store/test_truth.py")
    errors: list[str] = []

    # The store's views, from the running writer.
    got = views(group, "open_positions", "pnl_today", "trades_today")
    check_open_and_pnl(got, truth, today, errors)
    listed = sorted(map(ClosedTrade.model_validate, got["trades_today"]), key=lambda r: r.closed_seq)
    assert len(listed) == len(truth.closed)
    for r, t in zip(listed, truth.closed, strict=True):
        check_trade(f"trades_today {r.symbol} {r.position_id}", r, t, errors)

    # kpis_v7, risk_snapshot and nav_state: every committed one, the files being the last.
    navs = [NavState.model_validate(m) for _s, m in docs["nav_state"]]
    accepted = [n.nav_total for n in navs if n.sources_ok]
    assert accepted
    peak = 0.0
    for nav in navs:  # the peak is the highest NAV the anomaly guard accepted (a fresh instance: no reset)
        if nav.sources_ok:
            peak = max(peak, nav.nav_total)
        same(f"nav_state peak_nav at {nav.updated_at}", nav.peak_nav, peak, errors)
        same(f"nav_state dd_pct at {nav.updated_at}", nav.dd_pct, min(1.0, max(0.0, (peak - nav.nav_total) / peak)),
             errors)
    # The hub's NAV history (the dashboard's chart) copies nav_state samples: nav, peak, drawdown.
    samples = {(n.nav_total, n.peak_nav, n.dd_pct) for n in navs}
    history = views(group, "nav_history")["nav_history"]
    assert history
    for point in history:
        if (point["nav"], point["peak"], point["dd_pct"]) not in samples:
            errors.append(f"nav_history {point} is no committed nav_state sample")
    moves = sorted(truth.wallet_moves, key=lambda m: m[0])
    wallets = [STARTING_BALANCE + sum(v for _t, v in moves[:n]) for n in range(len(moves) + 1)]
    last_nav = navs[-1]
    if not any(close_enough(last_nav.wallet_balance, w) for w in wallets):
        errors.append(f"nav_state wallet_balance {last_nav.wallet_balance} is no prefix of the fills' "
                      f"realized - fees (last {wallets[-1]})")
    risks = {m["updated_at"]: RiskSnapshot.model_validate(m) for _s, m in docs["risk_snapshot"]}
    rows_at = {m["updated_at"]: PositionsState.model_validate(m) for _s, m in docs["positions_state"]}
    kpi_docs = docs["kpis_v7"][-20:]
    assert kpi_docs
    for seq, doc in kpi_docs:
        kpi = Kpis.model_validate(doc)
        if not any(n.nav_total == kpi.portfolio.nav and n.dd_pct == kpi.portfolio.dd_pct for n in navs):
            errors.append(f"kpis_v7 nav {kpi.portfolio.nav} / dd_pct {kpi.portfolio.dd_pct} is no nav_state's")
        rows = {(s.mode, s.account): s for s in kpi.pnl_today}
        scope = rows.get(("SIM", "paper"))
        # Newest first: the executor's copy is usually only a few commits old.
        candidates = (figs for s, figs in sorted(at_seq.items(), reverse=True) if s < seq)
        if scope is not None and not any(_pnl_matches(scope.symbols, figs) for figs in candidates):
            errors.append(f"kpis_v7 (seq {seq}) pnl_today equals the truth at no earlier commit: {scope.symbols}")
        for symbol, k in kpi.per_symbol.items():
            pnl = scope.symbols[symbol].total if scope is not None and symbol in scope.symbols else 0.0
            if k.pnl != pnl:
                errors.append(f"kpis_v7 per_symbol {symbol} pnl {k.pnl} != its pnl_today total {pnl}")
            same(f"kpis_v7 {symbol} pnl_pct", k.pnl_pct, pnl / kpi.portfolio.nav, errors)
        risk = risks.get(doc["updated_at"])
        surface = rows_at.get(doc["updated_at"])  # the positions rows of the same executor loop
        if surface is not None:
            gross = 0.0
            for row in surface.positions:
                exposure = row.notional / kpi.portfolio.nav
                gross += exposure
                same(f"kpis_v7 {row.symbol} exposure_nav_pct", kpi.per_symbol[row.symbol].exposure_nav_pct,
                     exposure, errors)
                if risk is not None:
                    same(f"risk_snapshot {row.symbol} exposure_nav_pct", risk.exposure_nav_pct.get(row.symbol),
                         exposure, errors)
            if risk is not None:
                same("risk_snapshot portfolio_exposure_nav_pct", risk.portfolio_exposure_nav_pct, gross, errors)
        if risk is not None and scope is not None and abs(scope.realized_gross) > 1e-9:
            same("risk_snapshot fee_pnl_ratio", risk.fee_pnl_ratio, scope.fees / abs(scope.realized_gross), errors)
            same("kpis_v7 fee_pnl_ratio", kpi.risk.fee_pnl_ratio, scope.fees / abs(scope.realized_gross), errors)
    for seq, doc in docs["positions_ledger"][-20:]:  # the executor's book: the store's at an earlier commit
        entries = {e.symbol: (e.side, e.qty, e.entry_price) for e in PositionsLedger.model_validate(doc).entries}
        if not any(_book_matches(entries, book) for s, book in sorted(book_at.items(), reverse=True) if s < seq):
            errors.append(f"positions_ledger (seq {seq}) equals the truth's open positions at no earlier fill: "
                          f"{entries}")
    kpi_file = Kpis.model_validate(json.loads((group.state_dir / "kpis_v7.json").read_text()))
    assert kpi_file == Kpis.model_validate(kpi_docs[-1][1]), "kpis_v7.json is not the last committed kpis_v7"
    net = [t.realized_gross - t.fees for t in truth.closed]
    if kpi_file.performance.expectancy is not None:  # the executor's own view of today's trades (may lag)
        assert any(close_enough(kpi_file.performance.expectancy, sum(net[:n]) / n) for n in range(1, len(net) + 1))
    positions = PositionsState.model_validate(json.loads((group.state_dir / "positions_state.json").read_text()))
    for row in positions.positions:
        direction = 1 if row.side == "LONG" else -1
        same(f"positions_state {row.symbol} unrealized_pnl", row.unrealized_pnl,
             (row.mark_price - row.entry_price) * row.qty * direction, errors)
        same(f"positions_state {row.symbol} notional", row.notional, row.qty * row.mark_price, errors)

    # The database and the CLI reading it, after a clean stop wrote every pending mark.
    assert group.kill("state_writer", signal.SIGTERM, wait=30) == 0
    records = sorted(table(group, TradeRecordRow), key=lambda r: r.closed_seq)
    assert len(records) == len(truth.closed)
    for r, t in zip(records, truth.closed, strict=True):
        check_trade(f"trade_record {r.symbol} {r.position_id}", r, t, errors)
    rows_db = {(r.mode, r.account, r.symbol): r for r in table(group, OpenPositionRow)}
    assert rows_db.keys() == truth.open.keys()
    for key, t in truth.open.items():
        check_position(f"open_position row {key[2]}", rows_db[key], t, errors)
    check_pnl("v7 pnl (database)", PnlToday.model_validate(cli_json(group, "pnl")), truth.day(today, today=True),
              truth.totals(today, today=True), errors)
    for p in map(StoredPosition.model_validate, cli_json(group, "positions")):
        check_position(f"v7 positions {p.symbol}", p, truth.open[(p.mode, p.account, p.symbol)], errors)
    assert not errors, "\n".join(errors)


def _book_matches(entries: dict[str, tuple[str, float, float]], book: dict[str, tuple[str, float, float]]) -> bool:
    return entries.keys() == book.keys() and all(
        entries[s][0] == book[s][0] and close_enough(entries[s][1], book[s][1])
        and close_enough(entries[s][2], book[s][2]) for s in entries)


def _pnl_matches(symbols: dict[str, Any], figs: dict[Key, DayFigures]) -> bool:
    want = {key[2]: f for key, f in figs.items() if key[:2] == ("SIM", "paper")}
    if set(symbols) - set(want) or any(f.fees or f.realized_gross or f.unrealized
                                       for s, f in want.items() if s not in symbols):
        return False
    return all(close_enough(row.realized_gross, want[s].realized_gross) and close_enough(row.fees, want[s].fees)
               and close_enough(row.unrealized, want[s].unrealized) for s, row in symbols.items())


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
