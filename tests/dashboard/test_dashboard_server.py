"""The dashboard actor as a real process: HTTP routes, live event stream, hub outage and recovery."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.messages import OrderFilled, SubmitOrder, utc_now
from tests.dashboard import samples
from tests.diagnostics.helpers import fast_instance, stop_actors_first
from tests.harness import Instance
from tests.producers import Producers


def url(inst: Instance, path: str = "/") -> str:
    return f"http://127.0.0.1:{inst.settings.dashboard.port}{path}"


def get(inst: Instance, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(url(inst, path), headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def view(inst: Instance) -> dict[str, Any]:
    status, body = get(inst, "/api/view")
    assert status == 200
    return json.loads(body)


def wait_view(inst: Instance, predicate, what: str, timeout: float = 30) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        try:
            current = view(inst)
        except OSError:
            return False
        seen.clear()
        seen.update(current)
        return bool(predicate(current))

    inst.wait_for(check, timeout, what, interval=0.2)
    return seen


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Instance]:
    with fast_instance(tmp_path) as inst:
        inst.start_writer()
        inst.start("dashboard")
        wait_view(inst, lambda v: v["hub"]["connected"], "the dashboard in sync with the hub")
        yield inst
        stop_actors_first(inst)


def publish(inst: Instance, *msgs) -> None:
    with contextlib.closing(Producers(inst.settings)) as sender:
        for msg in msgs:
            sender.send_and_wait(msg, timeout=15)


def test_view_and_live_event_stream(dash: Instance) -> None:
    now = utc_now()
    publish(dash, *samples.documents(now), samples.nav(10_000.0, 10_000.0, now))
    current = wait_view(dash, lambda v: len(v["positions"]["rows"]) == 2 and v["nav"]["points"],
                        "positions and NAV in the view")
    assert current["positions"]["rows"][0]["tp"] == 45000.0
    # Today's P&L is the store's view of the active scope (zeros before any fill), not the KPI copy.
    assert (current["pnl_today"]["active"], current["pnl_today"]["total"]) == ("SIM/paper", 0.0)
    assert current["router"]["router"]["maker_fill_share"] == 0.7
    assert len(current["nav"]["points"]) == 1

    # The event stream pushes a view at once and another when the state changes.
    req = urllib.request.Request(url(dash, "/api/events"))
    with urllib.request.urlopen(req, timeout=15) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")

        def next_view() -> dict[str, Any]:
            data = None
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and data is not None:
                    return data
            raise AssertionError("stream ended")

        first = next_view()
        assert len(first["positions"]["rows"]) == 2
        publish(dash, samples.positions(("BTCUSDT", "ETHUSDT", "SOLUSDT")))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pushed = next_view()
            if len(pushed["positions"]["rows"]) == 3:
                break
        else:
            raise AssertionError("no pushed view with the new position")
        assert pushed["version"] > first["version"]


def test_store_views_reach_the_page_as_the_hub_publishes_them(dash: Instance) -> None:
    """No polling: the dashboard asks for views only in its snapshot; a fill's P&L arrives as a `$view` frame."""
    publish(dash, samples.positions())
    wait_view(dash, lambda v: len(v["positions"]["rows"]) == 2, "positions")
    requests_before = _snapshot_requests(dash)
    publish(dash, SubmitOrder(intent_id="i-dash", symbol="BTCUSDT", side="BUY", qty=1.0, mode="SIM", account="paper"),
            OrderFilled(trade_id="t-dash", order_id="o-dash", intent_id="i-dash", symbol="BTCUSDT", side="BUY",
                        qty=1.0, price=100.0, fee=0.25, liquidity="taker", mode="SIM", account="paper"))
    shown = wait_view(dash, lambda v: v["pnl_today"]["total"] == -0.25, "the fill's fee in today's P&L")
    (scope,) = shown["pnl_today"]["scopes"]
    assert (scope["fees"], scope["realized_net"], scope["symbols"]["BTCUSDT"]["fees"]) == (0.25, -0.25, 0.25)
    assert _snapshot_requests(dash) == requests_before, "the dashboard asked the hub for views again"


def _snapshot_requests(inst: Instance) -> float:
    from tests.support.metrics import metric

    return metric(inst, "v7_writer_snapshot_requests_total")


def test_read_only_loopback_and_self_contained(dash: Instance) -> None:
    status, body = get(dash, "/")
    assert status == 200 and b"/static/vendor/uplot/uPlot.iife.min.js" in body
    assert b"http://" not in body and b"https://" not in body  # nothing from the network at run time
    status, body = get(dash, "/static/vendor/uplot/uPlot.iife.min.js")
    assert status == 200 and body.startswith(b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert get(dash, "/api/view", method="POST")[0] == 405
    assert get(dash, "/api/view", headers={"Host": "attacker.example"})[0] == 400  # DNS rebinding
    assert get(dash, "/nope")[0] == 404
    assert get(dash, "/healthz")[0] == 200


def test_hub_outage_shows_last_state_and_reconnects_by_itself(dash: Instance) -> None:
    publish(dash, samples.positions())
    wait_view(dash, lambda v: len(v["positions"]["rows"]) == 2, "positions")
    dash.kill("state_writer", signal.SIGKILL)
    down = wait_view(dash, lambda v: not v["hub"]["connected"], "the hub reported unreachable", timeout=30)
    assert down["hub"]["detail"]
    assert len(down["positions"]["rows"]) == 2  # last known state stays on the page
    dash.start("state_writer")
    back = wait_view(dash, lambda v: v["hub"]["connected"], "the dashboard reconnected", timeout=60)
    assert len(back["positions"]["rows"]) == 2
    publish(dash, samples.positions(("SOLUSDT",)))
    wait_view(dash, lambda v: [r["symbol"] for r in v["positions"]["rows"]] == ["SOLUSDT"], "updates after reconnect")


def test_bad_dashboard_settings_stop_start_up_naming_the_key(tmp_path: Path) -> None:
    with fast_instance(tmp_path) as inst:
        inst.write_config(inst.extra_toml + '\n[dashboard]\nhost = "0.0.0.0"\n')
        result = inst.run_cli("run", "dashboard", timeout=60)
        assert result.returncode == 2 and "dashboard.host" in result.stderr, result.stderr
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            inst.write_config(inst.extra_toml.split("\n[dashboard]")[0] + f"\n[dashboard]\nport = {port}\n")
            result = inst.run_cli("run", "dashboard", timeout=60)
        assert result.returncode == 2 and "dashboard.port" in result.stderr, result.stderr
