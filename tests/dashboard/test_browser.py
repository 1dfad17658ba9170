"""The page in real headless Chromium: it renders what the bus holds and follows it live, without reloads.

Skips with a reason when Debian's chromium is not installed (`.ci/run` installs it).
A screenshot is saved under test-artifacts/.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bus.messages import (
    EntryVetoed,
    ExitScanCompleted,
    OrderFilled,
    RouterActed,
    SignalGenerated,
    SubmitOrder,
    utc_now,
)
from tests.dashboard import samples
from tests.dashboard.browser import CHROMIUM, Page, chromium
from tests.diagnostics.helpers import fast_instance, stop_actors_first, wait_diagnostics
from tests.harness import REPO, Instance
from tests.producers import Producers

ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


def rows(page: Page, selector: str) -> int:
    return page.evaluate(f"document.querySelectorAll({selector!r}).length")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Instance]:
    with fast_instance(tmp_path) as inst:
        inst.start_writer()
        inst.start("diagnostics")
        inst.start("dashboard")
        wait_diagnostics(inst, lambda b: "diagnostics" in b["actors"] and "dashboard" in b["actors"],
                         "diagnostics and dashboard in sync")
        yield inst
        stop_actors_first(inst)


def test_page_renders_bus_state_and_updates_live(running: Instance, tmp_path: Path) -> None:
    now = utc_now()
    # Each message from a program allowed to send it (the hub refuses any other producer).
    with contextlib.closing(Producers(running.settings, prefer="executor")) as sender:
        for msg in samples.documents(now):
            sender.send_and_wait(msg, timeout=15)
        # Today's P&L comes from the positions store: one fill whose fee is all of it so far.
        sender.send_and_wait(SubmitOrder(intent_id="i-page", symbol="BTCUSDT", side="BUY", qty=1.0, mode="SIM",
                                         account="paper"), timeout=15)
        sender.send_and_wait(OrderFilled(trade_id="t-page", order_id="o-page", intent_id="i-page", symbol="BTCUSDT",
                                         side="BUY", qty=1.0, price=100.0, fee=2.5, liquidity="taker", mode="SIM",
                                         account="paper"), timeout=15)
        for i in range(12):
            nav = 10_000.0 + 10 * i
            sender.send(samples.nav(nav, nav, now + timedelta(seconds=i), anomaly_at=now + timedelta(seconds=6)))
        sender.send(SignalGenerated(signal_id="s1", symbol="BTCUSDT", direction="LONG", score=0.9))
        sender.send(EntryVetoed(symbol="BTCUSDT", reason="max_open_positions"))
        sender.send(EntryVetoed(symbol="ETHUSDT", reason="stale_nav"))
        sender.send(RouterActed(intent_id="i1", symbol="BTCUSDT", action="post_maker"))
        sender.send(ExitScanCompleted(open_positions_count=2, tp_sl_registered_count=1, tp_sl_missing_count=1,
                                   underwater_without_tp_sl_count=1, tp_sl_coverage_pct=0.5,
                                   ledger_registry_mismatch=True, missing_symbols=["ETHUSDT"]))
        assert sender.flush(15)
        wait_diagnostics(running, lambda b: b["veto_counters"]["total_vetoes"] == 2, "vetoes counted")

        with chromium(tmp_path) as browser:
            page = browser.open(f"http://127.0.0.1:{running.settings.dashboard.port}/")
            page.wait_for("document.body.dataset.version !== undefined", 30, "the first view rendered")
            page.wait_for("document.querySelectorAll('#positions tbody tr').length === 2", 20, "two positions")
            assert page.evaluate("document.querySelector('#positions tr[data-symbol=BTCUSDT]').innerText")\
                .split("\t")[:3] == ["BTCUSDT", "LONG", "0.0100"]
            page.wait_for("Number(document.getElementById('nav-chart').dataset.points) >= 12", 20, "NAV points")
            assert rows(page, "#nav-chart canvas") == 1
            assert "37,000" in page.evaluate("document.getElementById('nav-anomalies').innerText")
            page.wait_for("document.getElementById('sum-pnl').innerText === '-2.50'", 20, "today's P&L from the store")
            assert page.evaluate("document.getElementById('sum-pnl-scope').innerText") == "(SIM/paper)"
            assert page.evaluate("document.getElementById('scope-pill').innerText") == "SIM · paper · paper"
            assert page.evaluate("document.getElementById('halt-banner').hidden")
            page.wait_for("document.querySelectorAll('#veto-heatmap tbody tr').length === 2", 20, "heatmap rows")
            assert "YES" in page.evaluate("document.getElementById('exit-health').innerText")
            page.wait_for("document.querySelector('#liveness-kinds tr[data-kind=exits]')?.dataset.state "
                          "=== 'never_seen'", 20, "exits never seen")
            assert page.evaluate("document.querySelector('#liveness-kinds tr[data-kind=signals]').dataset.state") \
                == "healthy"
            page.wait_for("document.querySelector('#liveness-actors tr[data-actor=dashboard]')?.dataset.stale "
                          "=== 'false'", 20, "the dashboard's own heartbeat")
            assert page.evaluate("document.getElementById('hub-banner').hidden") is True
            page.screenshot(ARTIFACTS / "dashboard.png")

            # Live: a new position and a new NAV point arrive without a reload.
            page.evaluate("window.__sameDocument = 1")
            sender.send_and_wait(samples.positions(("BTCUSDT", "ETHUSDT", "SOLUSDT")), timeout=15)
            page.wait_for("document.querySelector('#positions tr[data-symbol=SOLUSDT]') !== null", 20,
                          "the new position pushed to the page")
            assert page.evaluate("window.__sameDocument") == 1

            # The hub goes away: a banner, the last state kept; it comes back by itself.
            running.kill("state_writer", signal.SIGKILL)
            page.wait_for("!document.getElementById('hub-banner').hidden", 30, "the hub-unreachable banner")
            assert rows(page, "#positions tbody tr") == 3
            page.wait_for("document.querySelector('#liveness-actors tr[data-actor=state_writer]').dataset.stale "
                          "=== 'true'", 20, "the state writer flagged on the liveness card")
            page.screenshot(ARTIFACTS / "dashboard-hub-down.png")
            running.start("state_writer")
            page.wait_for("document.getElementById('hub-banner').hidden", 60, "the banner gone after reconnect")
            assert page.evaluate("window.__sameDocument") == 1
