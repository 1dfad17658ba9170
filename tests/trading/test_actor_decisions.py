"""What the executor and the exit scanner decide from the events they are given.

The actors are built for real (their own sender, subscriber and metrics) beside a real hub,
and fed events through the handlers their event loop calls; what they decide is read back
as the hub committed it (a subscriber in the test).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from actors.executor.actor import Executor
from actors.executor.positions import collect_rows_by_symbol
from actors.exit_scanner.actor import ExitScanner
from bus.messages import ExitScanCompleted, NavAnomaly, NavState, RequestExit, StoredPosition
from bus.subscriber import Subscriber, Update
from exchange.adapter import BookTop, ExchangePosition
from exchange.streams import BookTicked
from tests import SIM_SCOPE
from tests.harness import Instance

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Committed:
    """Everything the hub commits from now on, as the test sees it."""

    def __init__(self, inst: Instance) -> None:
        self.sub = Subscriber(inst.settings, keys=[])
        assert self.sub.wait_synced(20)
        self.seen: list = []

    def of(self, cls: type, count: int = 1, timeout: float = 20.0) -> list:
        """Wait until `count` messages of `cls` have been committed; all of them so far."""
        deadline = time.monotonic() + timeout
        while True:
            self.seen += [u.msg for u in self.sub.poll(0.1) if isinstance(u, Update)]
            found = [m for m in self.seen if isinstance(m, cls)]
            if len(found) >= count or time.monotonic() > deadline:
                return found


@pytest.fixture
def executor(hub: Instance) -> Iterator[Executor]:
    ex = Executor(hub.settings, serve_metrics=False)
    try:
        yield ex
    finally:
        ex.sender.close(flush_timeout=2)


@pytest.fixture
def scanner(hub: Instance) -> Iterator[tuple[ExitScanner, Committed]]:
    committed = Committed(hub)
    sc = ExitScanner(hub.settings, serve_metrics=False)
    sc.ready = True
    try:
        yield sc, committed
    finally:
        sc.sender.close(flush_timeout=2)
        committed.sub.close()


def nav(total: float, ok: bool = True, at: datetime = T0) -> NavState:
    anomalies = [] if ok else [NavAnomaly(ts=at, nav=total, previous_peak=10_000.0, reason="multiplier")]
    return NavState(scope=SIM_SCOPE,
        updated_at=at, nav_total=total, aum=total, peak_nav=10_000.0, dd_pct=0.0, dd_state="NORMAL",
                    sources_ok=ok, anomalies=anomalies)


def update(msg) -> Update:
    from bus.codec import Envelope

    return Update(seq=1, topic=msg.TYPE, envelope=Envelope("sync", 1, 1, 1, 0.0, msg))


def test_an_anomalous_nav_sample_never_reaches_var(executor: Executor) -> None:
    for i, total in enumerate([10_000.0, 10_010.0, 37_000.0, 10_020.0]):
        executor.on_update(update(nav(total, ok=total < 20_000, at=T0 + timedelta(seconds=i))))
    assert [n for _t, n in executor.navs] == [10_000.0, 10_010.0, 10_020.0]
    assert executor.m.nav_excluded._value.get() == 1


def test_the_stale_nav_veto_says_what_to_run_after_a_deposit(executor: Executor) -> None:
    detail = executor._anomaly_detail(nav(37_000.0, ok=False))
    assert "37000.00" in detail and "v7 nav reset-peak" in detail


def pos(symbol: str, mark: float) -> ExchangePosition:
    return ExchangePosition.model_construct(symbol=symbol, side="LONG", qty=1.0, entry_price=100.0, mark_price=mark,
                                            unrealized_pnl=0.0, realized_pnl=0.0, leverage=5.0, margin=20.0,
                                            opened_at=None, updated_at=T0)


def test_one_bad_row_marks_its_symbol_stale_and_the_others_go_on() -> None:
    last_good: dict = {}
    rows, stale = collect_rows_by_symbol([pos("BTCUSDT", 101.0), pos("ETHUSDT", 102.0)], last_good)
    assert [r.symbol for r in rows] == ["BTCUSDT", "ETHUSDT"] and stale == {}
    rows, stale = collect_rows_by_symbol([pos("BTCUSDT", 0.0), pos("ETHUSDT", 103.0)], last_good)
    assert list(stale) == ["BTCUSDT"] and "mark 0.0" in stale["BTCUSDT"]
    by = {r.symbol: r for r in rows}
    assert by["BTCUSDT"].mark_price == 101.0  # the last good row, never zeros, never flat
    assert by["ETHUSDT"].mark_price == 103.0


def stored(symbol: str, side: str = "LONG", tp: float | None = 110.0, sl: float | None = 90.0,
           entry: float = 100.0) -> dict:
    return StoredPosition(
        mode="SIM", account="paper", symbol=symbol, side=side, qty=1.0, entry_price=entry, entry_time=T0,
        position_id=f"p-{symbol}", tp=tp, sl=sl, trade_min_price=entry, trade_max_price=entry, opened_seq=1,
        updated_seq=1, created_at=T0, updated_at=T0).model_dump(mode="json")


def mark(symbol: str, price: float) -> BookTicked:
    return BookTicked(top=BookTop(symbol=symbol, bid=price - 0.01, ask=price + 0.01, bid_qty=1.0, ask_qty=1.0,
                                  mark=price, ts=T0))


def test_coverage_below_100_is_computed_by_the_scanner(scanner) -> None:
    scanner, committed = scanner
    # Three open positions: one protected, one with only a TP, one with nothing and under water.
    scanner.on_view("open_positions", [stored("BTCUSDT"), stored("ETHUSDT", sl=None), stored("SOLUSDT", tp=None,
                                                                                                   sl=None)])
    for symbol, price in (("BTCUSDT", 100.0), ("ETHUSDT", 101.0), ("SOLUSDT", 95.0)):
        scanner.on_market(mark(symbol, price))
    scanner._report()
    [status] = committed.of(ExitScanCompleted)
    assert (status.open_positions_count, status.tp_sl_registered_count, status.tp_sl_missing_count) == (3, 1, 2)
    assert status.tp_sl_coverage_pct == pytest.approx(1 / 3)
    assert status.underwater_without_tp_sl_count == 1  # SOL below its entry; ETH above
    assert status.ledger_registry_mismatch is True and status.missing_symbols == ["ETHUSDT", "SOLUSDT"]


def test_full_coverage_is_no_mismatch(scanner) -> None:
    scanner, committed = scanner
    scanner.on_view("open_positions", [stored("BTCUSDT")])
    scanner._report()
    [status] = committed.of(ExitScanCompleted)
    assert status.tp_sl_coverage_pct == 1.0 and status.ledger_registry_mismatch is False


def test_the_mark_that_crosses_the_stop_sends_the_exit_at_once(scanner) -> None:
    scanner, committed = scanner
    scanner.on_view("open_positions", [stored("BTCUSDT", tp=110.0, sl=90.0)])
    scanner.on_market(mark("BTCUSDT", 95.0))
    assert scanner.triggers == 0
    scanner.on_market(mark("BTCUSDT", 89.5))  # this mark crosses the stop: the exit is journaled in its handler
    assert scanner.triggers == 1
    [exit_] = committed.of(RequestExit)
    assert (exit_.reason, exit_.side, exit_.qty, exit_.level, exit_.mark_price) == ("SL", "SELL", 1.0, 90.0, 89.5)
    scanner.on_market(mark("BTCUSDT", 89.0))  # in flight: not sent twice
    assert scanner.triggers == 1 and len(committed.of(RequestExit, count=2, timeout=1.0)) == 1
