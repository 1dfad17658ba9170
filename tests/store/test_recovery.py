"""Crash recovery of the positions store with a real state writer process (kill -9, lost ACKs, DB faults)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest
import zmq

from actors.state_writer.store.tables import FillRow, OpenPositionRow, PositionEventRow, TradeRecordRow
from bus import codec
from bus.sockets import connect
from bus.subscriber import SnapshotError, request_status
from tests.harness import Instance
from tests.store.helpers import Backend, bus, configure, integrity_ok, open_positions, table
from tests.support.messages import fill, heartbeat, intent, ledger, marks
from tests.support.metrics import metric


def _snapshot_at_least(inst: Instance, seq: int) -> bool:
    journal = inst.settings.journal_path
    return any(int(p.name.split("-")[1].split(".")[0]) >= seq for p in journal.glob("snapshot-*.msgpack"))


def test_kill9_writer_restores_positions_and_whole_trade_extremes(store_v7: Instance, backend: Backend) -> None:
    # Extremes reach the database at most hourly here, and snapshots compact the journal every
    # 0.2 s: after kill -9 only the journal the store asked the writer to keep can restore them.
    configure(store_v7, backend, store={"extremes_flush_s": 3600}, writer={"snapshot_every_s": 0.2})
    store_v7.start_writer()
    ttl = datetime(2030, 1, 1, tzinfo=UTC)
    with bus(store_v7) as b:
        b.send(intent("i-btc", "BTCUSDT", "BUY", 2.0, tp=110.0, sl=90.0, ttl_ts=ttl, signal_id="sig-1",
                      arrival_mid=99.9),
               fill("t1", "i-btc", "BTCUSDT", "BUY", 1.0, 100.0, fee=0.05),
               fill("t2", "i-btc", "BTCUSDT", "BUY", 1.0, 102.0, fee=0.05),
               intent("i-eth", "ETHUSDT", "SELL", 3.0, tp=40.0, sl=60.0, position_id="pos-eth"),
               fill("t3", "i-eth", "ETHUSDT", "SELL", 3.0, 50.0, fee=0.1))
        b.send(marks(BTCUSDT=108.0, ETHUSDT=47.0), marks(BTCUSDT=96.0, ETHUSDT=55.0))
        last = b.send(marks(BTCUSDT=101.0, ETHUSDT=49.0),
                      ledger({"symbol": "BTCUSDT", "position_id": "i-btc", "sl": 95.0}))
    before = open_positions(store_v7)
    btc, eth = before[("SIM", "paper", "BTCUSDT")], before[("SIM", "paper", "ETHUSDT")]
    assert (btc.side, btc.qty, btc.entry_price, btc.tp, btc.sl, btc.ttl_ts) == ("LONG", 2.0, 101.0, 110.0, 95.0, ttl)
    assert (btc.trade_min_price, btc.trade_max_price, btc.position_id) == (96.0, 108.0, "i-btc")
    assert (btc.entry_signal_id, btc.entry_arrival_mid) == ("sig-1", 99.9)
    assert (eth.side, eth.qty, eth.trade_min_price, eth.trade_max_price, eth.position_id) == (
        "SHORT", 3.0, 47.0, 55.0, "pos-eth")

    store_v7.wait_for(lambda: _snapshot_at_least(store_v7, last), 20, "a writer snapshot covering every message")
    rows = {r.symbol: r for r in table(store_v7, OpenPositionRow)}
    # BTC's row was rewritten by its SL change; ETH's marks are only in memory and the journal.
    assert (rows["ETHUSDT"].trade_min_price, rows["ETHUSDT"].trade_max_price) == (50.0, 50.0)
    store_v7.kill("state_writer", signal.SIGKILL)
    assert integrity_ok(store_v7)

    store_v7.start_writer()
    after = open_positions(store_v7)
    assert after == before

    with bus(store_v7, "router") as b:
        b.send(fill("t4", "x-btc", "BTCUSDT", "SELL", 2.0, 104.0, fee=0.1, reduce_only=True))
    (trade,) = table(store_v7, TradeRecordRow)
    assert (trade.symbol, trade.side, trade.qty, trade.entry_price, trade.exit_price) == (
        "BTCUSDT", "LONG", 2.0, 101.0, 104.0)
    assert trade.gross_pnl == pytest.approx(6.0)
    assert trade.fees == pytest.approx(0.2)
    assert trade.realized_pnl == pytest.approx(5.8)
    assert (trade.trade_min_price, trade.trade_max_price) == (96.0, 108.0)
    assert trade.mae == pytest.approx((101.0 - 96.0) * 2) and trade.mfe == pytest.approx((108.0 - 101.0) * 2)
    assert (trade.tp, trade.sl, trade.close_reason) == (110.0, 95.0, "fill")
    kinds = [e.kind for e in table(store_v7, PositionEventRow, PositionEventRow.symbol == "BTCUSDT")]
    assert kinds == ["open", "add", "tp_sl_change", "close"]
    assert set(open_positions(store_v7)) == {("SIM", "paper", "ETHUSDT")}

    # Today's P&L: realized 6 - fees 0.3 (both trades' fills), unrealized ETH short 3 @50 marked 49.
    out = store_v7.run_cli("pnl", "--json")
    assert out.returncode == 0, out.stderr
    (scope,) = json.loads(out.stdout)["scopes"]
    assert scope["realized_net"] == pytest.approx(5.7) and scope["unrealized"] == pytest.approx(3.0)
    assert scope["total"] == pytest.approx(8.7)
    assert (scope["closed_trades"], scope["open_positions"]) == (1, 1)
    store_v7.kill("state_writer", signal.SIGTERM)
    offline = store_v7.run_cli("pnl", "--json")
    assert offline.returncode == 0, offline.stderr
    assert "read from the database" in offline.stderr
    assert json.loads(offline.stdout)["scopes"] == json.loads(out.stdout)["scopes"]
    assert integrity_ok(store_v7)


def test_fill_resent_after_lost_ack_is_applied_once(store_v7: Instance, backend: Backend) -> None:
    store_v7.start_writer()
    settings = store_v7.settings
    the_fill = fill("T-9001", "i-1", "SOLUSDT", "BUY", 4.0, 20.0, fee=0.02)
    # A router sends the fill and dies before the ACK reaches it.
    ctx = zmq.Context()
    sock = connect(ctx, zmq.DEALER, settings.ingest_endpoint, settings)
    sock.send(codec.encode_envelope("router", time.time_ns(), 1, the_fill))
    sock.close(linger=2000)
    ctx.term()
    store_v7.wait_for(lambda: ("SIM", "paper", "SOLUSDT") in open_positions(store_v7), 20, "the first delivery")
    # Its next incarnation resends it (a new bus identity, so only the trade id can tell).
    with bus(store_v7, "router") as b:
        b.send(the_fill)
        b.send(the_fill)
    pos = open_positions(store_v7)[("SIM", "paper", "SOLUSDT")]
    assert (pos.qty, pos.entry_price, pos.fees) == (4.0, 20.0, 0.02)
    assert len(table(store_v7, FillRow)) == 1
    assert [e.kind for e in table(store_v7, PositionEventRow)] == ["open"]
    assert metric(store_v7, "v7_store_fills_total", result="duplicate") == 2
    assert metric(store_v7, "v7_store_fills_total", result="applied") == 1


def _status_degraded(inst: Instance) -> str | None:
    try:
        return request_status(inst.settings, timeout_s=1.0)["degraded"]
    except SnapshotError:  # busy inside a commit attempt
        return None


def test_failed_commit_holds_the_ack_and_resumes_by_itself(store_v7: Instance, backend: Backend) -> None:
    if backend.name != "sqlite":
        pytest.skip("makes the commit fail by holding SQLite's write lock")
    store_v7.start_writer()
    db = store_v7.settings.home / "logs" / "positions.db"
    proc = store_v7.procs["state_writer"]
    with bus(store_v7, "router") as b:
        b.send(intent("i-1", "BTCUSDT", "BUY", 1.0, tp=120.0))
        holder = sqlite3.connect(db, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        try:
            first_fill = fill("t-1", "i-1", "BTCUSDT", "BUY", 1.0, 100.0)
            router = b.sender_for(first_fill)
            future = router.submit(first_fill)
            # Each attempt waits out SQLite's busy timeout (5 s), so answers come between attempts.
            store_v7.wait_for(lambda: _status_degraded(store_v7) == "store:SQLITE_BUSY", 60,
                              "the writer to report the refused commit")
            store_v7.wait_for(lambda: metric(store_v7, "v7_writer_hook_errors_total", reason="SQLITE_BUSY") >= 2,
                              60, "a failed retry (reopen + journal replay)")
            assert not future.done(), "the fill must not be ACKed while the store refuses it"
            assert router.outbox_depth == 1
            assert proc.poll() is None, "a refusing database must not take the writer down"
            assert metric(store_v7, "v7_writer_degraded") == 1
            assert "not ACKing" in store_v7.logs("state_writer")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # Nobody restarts anything: the store is reopened and caught up from the journal, then the
        # held fill is ACKed with the seq it was journaled as.
        seq = future.result(timeout=30)
        assert seq == request_status(store_v7.settings)["seq"]
        assert request_status(store_v7.settings)["degraded"] is None
        assert metric(store_v7, "v7_writer_degraded") == 0
        assert "resuming ACKs" in store_v7.logs("state_writer")
    pos = open_positions(store_v7)[("SIM", "paper", "BTCUSDT")]
    assert (pos.qty, pos.entry_price, pos.tp) == (1.0, 100.0, 120.0)
    assert len(table(store_v7, FillRow)) == 1
    assert [e.kind for e in table(store_v7, PositionEventRow)] == ["open"]
    assert integrity_ok(store_v7)


def test_extremes_reach_the_database_at_the_configured_rate(store_v7: Instance, backend: Backend) -> None:
    configure(store_v7, backend, store={"extremes_flush_s": 0.5})
    store_v7.start_writer()
    with bus(store_v7) as b:
        b.send(intent("i-1", "ETHUSDT", "BUY", 1.0), fill("t-1", "i-1", "ETHUSDT", "BUY", 1.0, 50.0))
        writes_before = metric(store_v7, "v7_store_extremes_writes_total")
        # Ten new highs inside 0.5 s cost at most two writes; the row catches up after the interval.
        for i in range(10):
            b.send(marks(ETHUSDT=51.0 + i))
        burst = metric(store_v7, "v7_store_extremes_writes_total") - writes_before
        assert burst <= 2
        time.sleep(0.6)
        b.send(marks(ETHUSDT=55.0))  # inside the range: no new extreme, but the pending one is due
        row = lambda: table(store_v7, OpenPositionRow)[0]  # noqa: E731
        store_v7.wait_for(lambda: row().trade_max_price == 60.0, 10, "the pending extreme to be written")
        # The last mark too, at the same rate (a later batch carries it once it is due).
        time.sleep(0.6)
        b.send(marks(ETHUSDT=55.0))
        store_v7.wait_for(lambda: row().mark_price == 55.0, 10, "the last mark to be written")
    # Nothing pending now: heartbeat-only traffic never opens a transaction.
    tx = metric(store_v7, "v7_store_transactions_total")
    with bus(store_v7) as b:
        now = datetime.now(UTC)
        for _ in range(5):
            b.send(heartbeat("sync", pid=1, started_at=now - timedelta(seconds=1)))
    assert metric(store_v7, "v7_store_transactions_total") == tx
