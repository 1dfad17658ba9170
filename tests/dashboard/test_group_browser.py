"""The page in headless Chromium against a whole running group (paper exchange, executor, router,
exit scanner, sync, diagnostics, dashboard): positions appear, the NAV chart has points, and the
liveness card shows a stopped router. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.browser import CHROMIUM, chromium
from tests.diagnostics.helpers import stop_actors_first
from tests.harness import REPO, Instance, instance
from tests.trading.group import configure_fast, start_group

ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Instance]:
    with instance(tmp_path) as inst:
        configure_fast(inst)
        # heartbeats every second: a stopped actor is flagged after 3 s
        inst.write_config(inst.extra_toml + "\n[bus]\nheartbeat_s = 0.5\n")
        start_group(inst)
        inst.start("diagnostics")
        inst.start("dashboard")
        yield inst
        stop_actors_first(inst)


def test_running_group_on_the_page_and_a_stopped_router(group: Instance, tmp_path: Path) -> None:
    with chromium(tmp_path) as browser:
        page = browser.open(f"http://127.0.0.1:{group.settings.dashboard.port}/")
        page.wait_for("document.querySelectorAll('#positions tbody tr').length >= 1", 120,
                      "an open position from the paper group")
        row = page.evaluate("document.querySelector('#positions tbody tr').innerText").split("\t")
        assert row[1] in ("LONG", "SHORT") and float(row[3].replace(",", "")) > 0  # side, entry price
        page.wait_for("Number(document.getElementById('nav-chart').dataset.points) >= 2", 60, "NAV points")
        assert page.evaluate("document.querySelectorAll('#nav-chart canvas').length") == 1
        page.wait_for("document.querySelector('#liveness-actors tr[data-actor=router]')?.dataset.stale === 'false'",
                      30, "the router alive on the liveness card")
        page.wait_for("document.querySelector('#liveness-kinds tr[data-kind=signals]')?.dataset.state "
                      "=== 'healthy'", 60, "signals healthy")
        assert page.evaluate("document.getElementById('hub-banner').hidden") is True
        page.screenshot(ARTIFACTS / "dashboard-group.png")

        group.kill("router", signal.SIGTERM)
        page.wait_for("document.querySelector('#liveness-actors tr[data-actor=router]').dataset.stale === 'true'",
                      30, "the stopped router flagged on the liveness card")
        reason = page.evaluate("document.querySelector('#liveness-actors tr[data-actor=router]').innerText")
        assert "stopped" in reason or "no heartbeat" in reason, reason
        page.screenshot(ARTIFACTS / "dashboard-router-stopped.png")
