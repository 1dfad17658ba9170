"""One definition per P&L number: per-symbol rows that add up, a zero row to start each day, and
past days valued at their last mark. A real store on real SQLite (and PostgreSQL when configured),
driven through its commit path with a clock the test moves across midnight."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.state_writer.hooks import Committed
from actors.state_writer.store import PositionStore
from actors.state_writer.store.reader import StoreReader
from bus.messages import Kpis, Message, PnlScope, PnlToday, PortfolioKpis, SwitchScope
from config.settings import Settings
from tests import SIM_SCOPE
from tests.harness import Instance, instance
from tests.store.helpers import Backend
from tests.support.messages import fill, intent, marks

D = date(2025, 6, 1)
NOON = datetime(2025, 6, 1, 12, tzinfo=UTC)
NEXT_DAY = datetime(2025, 6, 2, 0, 0, 1, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Driver:
    """A store fed committed messages one batch at a time, as the writer does."""

    def __init__(self, inst: Instance, clock: Clock) -> None:
        self.inst, self.settings, self.clock = inst, inst.settings, clock
        self.seq = 0
        self.store = self.open()

    def open(self) -> PositionStore:
        store = PositionStore(self.settings, clock=self.clock)
        store.open()
        return store

    def send(self, *msgs: Message) -> int:
        batch = []
        for msg in msgs:
            self.seq += 1
            batch.append(Committed(self.seq, "test", 1, self.seq, msg))
        self.store.apply(batch)
        return self.seq

    def pnl(self) -> PnlToday:
        return PnlToday.model_validate(self.store.view("pnl_today"))

    def restart(self) -> None:
        self.store.close()
        self.store = self.open()


@pytest.fixture
def driver(tmp_path: Path, backend: Backend) -> Iterator[Driver]:
    extra = backend.toml(store={"extremes_flush_s": 3600.0})  # the database's mark lags: only memory is current
    with instance(tmp_path, extra) as inst:
        d = Driver(inst, Clock(NOON))
        yield d
        d.store.close()


def at(hours: float) -> datetime:
    return NOON + timedelta(hours=hours)


def fold(values: list[float]) -> float:
    """Adding up as any reader of the view would: one by one, in the order listed."""
    total = 0.0
    for v in values:
        total += v
    return total


def assert_rows_add_up(scope: PnlScope) -> None:
    rows = list(scope.symbols.values())
    for name in ("realized_gross", "fees", "realized_net", "unrealized", "total"):
        assert getattr(scope, name) == fold([getattr(r, name) for r in rows]), name
    assert scope.closed_trades == sum(r.closed_trades for r in rows)
    for r in rows:
        assert r.realized_net == r.realized_gross - r.fees
        assert r.total == r.realized_net + r.unrealized


def test_symbol_rows_add_up_exactly_to_the_scope(driver: Driver) -> None:
    driver.send(intent("i1", "BTCUSDT", "BUY", 0.3),
                fill("t1", "i1", "BTCUSDT", "BUY", 0.3, 101.7, fee=0.0131, ts=at(1)))
    driver.send(intent("i2", "ETHUSDT", "SELL", 0.7),
                fill("t2", "i2", "ETHUSDT", "SELL", 0.7, 33.1, fee=0.0217, ts=at(1)))
    driver.send(fill("t3", "i1", "BTCUSDT", "SELL", 0.1, 103.3, fee=0.0071, ts=at(2)))
    driver.send(fill("t4", "i2", "ETHUSDT", "BUY", 0.7, 32.9, fee=0.0113, ts=at(2)))  # ETH closes
    driver.send(intent("i3", "SOLUSDT", "BUY", 1.1),
                fill("t5", "i3", "SOLUSDT", "BUY", 1.1, 20.3, fee=0.0033, ts=at(3)))
    driver.send(marks(BTCUSDT=99.9, SOLUSDT=21.7))
    (scope,) = driver.pnl().scopes
    assert list(scope.symbols) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert_rows_add_up(scope)
    eth, btc = scope.symbols["ETHUSDT"], scope.symbols["BTCUSDT"]
    assert (eth.closed_trades, eth.unrealized) == (1, 0.0)
    assert eth.realized_gross == pytest.approx((33.1 - 32.9) * 0.7)
    assert btc.realized_gross == pytest.approx((103.3 - 101.7) * 0.1)
    assert btc.unrealized == pytest.approx((99.9 - 101.7) * 0.2)
    assert (scope.open_positions, scope.closed_trades) == (2, 1)
    # The KPI document embeds the same rows (the executor copies them from this view).
    kpis = Kpis(scope=SIM_SCOPE, portfolio=PortfolioKpis(nav=1.0, dd_pct=0.0), pnl_today=[scope])
    assert kpis.pnl_today[0].symbols["BTCUSDT"] == btc


_examples = itertools.count()
fills_strategy = st.lists(st.tuples(st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]),
                                    st.sampled_from(["BUY", "SELL"]),
                                    st.floats(0.001, 5.0), st.floats(0.01, 50_000.0), st.floats(0.0, 3.0)),
                          min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(trades=fills_strategy, mark=st.floats(0.5, 2.0))
def test_any_days_rows_add_up_exactly(tmp_path: Path, trades: list[tuple[Any, ...]], mark: float) -> None:
    with instance(tmp_path / f"example-{next(_examples)}") as inst:
        d = Driver(inst, Clock(NOON))
        try:
            for n, (symbol, side, qty, price, fee) in enumerate(trades):
                d.send(fill(f"t{n}", f"i{n}", symbol, side, qty, price, fee=fee, ts=at(n / 100)))
            d.send(marks(**{s: p * mark for s, _side, _q, p, _f in trades}))
            for scope in d.pnl().scopes:
                assert_rows_add_up(scope)
        finally:
            d.store.close()


def test_each_day_starts_with_a_zero_row_for_the_active_scope(driver: Driver) -> None:
    (fresh,) = driver.pnl().scopes
    assert (fresh.mode, fresh.account, fresh.total, fresh.symbols) == ("SIM", "paper", 0.0, {})
    driver.send(intent("i1", "BTCUSDT", "BUY", 1.0), fill("t1", "i1", "BTCUSDT", "BUY", 1.0, 100.0, fee=0.1, ts=at(1)))
    driver.send(fill("t2", "i1", "BTCUSDT", "SELL", 1.0, 103.0, fee=0.1, ts=at(2)))
    driver.send(intent("l1", "ETHUSDT", "SELL", 2.0, mode="LIVE", account="main"),
                fill("t3", "l1", "ETHUSDT", "SELL", 2.0, 50.0, fee=0.2, ts=at(3), mode="LIVE", account="main"))
    assert [(s.mode, s.realized_net) for s in driver.pnl().scopes] == [
        ("LIVE", pytest.approx(-0.2)), ("SIM", pytest.approx(2.8))]
    assert len(driver.store.view("trades_today")) == 1

    driver.store.changed_views()  # what a subscriber has by now (the writer publishes after each batch)
    driver.clock.now = NEXT_DAY
    driver.store.tick()
    changed = driver.store.changed_views()
    assert set(changed) >= {"pnl_today", "trades_today"}, "the day's end must be published"
    assert changed["trades_today"] == []
    today = PnlToday.model_validate(changed["pnl_today"])
    assert today.day == "2025-06-02"
    sim = next(s for s in today.scopes if s.mode == "SIM")
    assert (sim.realized_gross, sim.fees, sim.total, sim.symbols) == (0.0, 0.0, 0.0, {})
    live = next(s for s in today.scopes if s.mode == "LIVE")  # still open: its row carries the unrealized
    assert (live.realized_net, live.open_positions, list(live.symbols)) == (0.0, 1, ["ETHUSDT"])
    # A switch gives the newly active scope its zero row.
    driver.send(SwitchScope(mode="LIVE", account="other", ts=NEXT_DAY))
    assert ("LIVE", "other", 0.0) in {(s.mode, s.account, s.total) for s in driver.pnl().scopes}


def _past_day(settings: Settings) -> PnlToday:
    reader = StoreReader(settings)
    try:
        return reader.pnl(D, today=D + timedelta(days=1))
    finally:
        reader.close()


def _btc_day(driver: Driver) -> None:
    driver.send(intent("i1", "BTCUSDT", "BUY", 2.0), fill("t1", "i1", "BTCUSDT", "BUY", 2.0, 100.0, fee=0.5, ts=at(1)))
    driver.send(marks(BTCUSDT=101.0), marks(BTCUSDT=96.0), marks(BTCUSDT=107.0))  # 107: the day's last mark


def test_a_past_day_is_valued_at_its_last_mark(driver: Driver) -> None:
    _btc_day(driver)
    driver.clock.now = NEXT_DAY
    driver.store.tick()
    driver.send(marks(BTCUSDT=130.0))  # the next day's marks change nothing about the day before
    driver.restart()
    (scope,) = _past_day(driver.settings).scopes
    assert (scope.realized_net, scope.unrealized, scope.open_positions) == (-0.5, (107.0 - 100.0) * 2, 1)
    assert scope.symbols["BTCUSDT"].unrealized == 14.0
    # The CLI says the same, from the database (a past day is never asked of the writer).
    out = driver.inst.run_cli("pnl", "--day", D.isoformat(), "--json")
    assert out.returncode == 0, out.stderr
    (shown,) = json.loads(out.stdout)["scopes"]
    assert (shown["unrealized"], shown["total"]) == (14.0, 13.5)


def test_a_writer_down_at_midnight_records_the_day_it_missed(driver: Driver) -> None:
    _btc_day(driver)
    driver.store.close()  # stopped on D (its pending marks are written: 107)
    driver.clock.now = NEXT_DAY + timedelta(hours=5)
    driver.store = driver.open()
    assert driver.pnl().day == D.isoformat(), "the store resumes the day it was in"
    driver.store.tick()  # its first tick ends that day
    assert driver.pnl().day == "2025-06-02"
    (scope,) = _past_day(driver.settings).scopes
    assert scope.unrealized == 14.0
