"""Venue and process failures of the whole LIVE group on the fake Binance venue (`make chaos`).

One group for the module, failures in file order; after each, the same invariants hold:
no client order id placed twice on the venue (one intent's orders are `<intent>.<n>` and an
unknown outcome is looked up by that id before anything is placed again), every venue trade
applied by the positions store exactly once (by trade id, however often it was reported), and
the store ends up with the venue's positions.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.ops import supervisor_proxy
from tests.live.group import Group, live_group, trade_key
from tests.supervised import supervised_group
from tests.support.metrics import metric

# Generous waits: these run beside other suites on shared cores, and a LIVE gateway's restart
# includes the venue account check.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    with live_group(tmp_path_factory.mktemp("live-faults") / "home") as g:
        yield g


def _metric(g: Group, actor: str, name: str) -> float | None:
    """None while the actor does not answer or does not expose `name` yet."""
    try:
        return metric(g.inst, name, default=None, at=actor)
    except OSError:
        return None


def _lost_orders(g: Group) -> list[dict[str, Any]]:
    """Requests the venue executed and then lost the answer of (not the ones it refused)."""
    return [r for r in g.fake.request_log() if str(r.get("outcome", "")).startswith("lost") and r["status"] == 200]


def assert_consistent(g: Group, timeout: float = 90) -> None:
    """No client id twice on the venue; every venue trade committed once; store == venue."""
    # The group keeps trading: read the venue's orders once, then the journal (an intent is
    # committed before any order of it is placed, so every order read has its intent there).
    orders = g.venue_orders()
    intents = g.intents()
    ids = Counter(o["clientOrderId"] for o in orders)
    assert max(ids.values(), default=1) == 1, [i for i, n in ids.items() if n > 1]
    for cid in ids:
        assert cid.rsplit(".", 1)[0] in intents, cid
    # Per intent, the venue never executed more than the intent asked for.
    executed: Counter[str] = Counter()
    for o in orders:
        executed[o["clientOrderId"].rsplit(".", 1)[0]] += float(o["executedQty"])
    for intent_id, qty in executed.items():
        assert qty <= intents[intent_id].qty + 1e-9, (intent_id, qty, intents[intent_id].qty)

    def all_applied() -> bool:
        return {trade_key(t) for t in g.venue_trades()} <= set(g.applied_fills())

    g.inst.wait_for(all_applied, timeout, "every venue trade applied by the positions store", interval=0.5)
    # The store applied each venue trade once, as the venue has it. The journal may hold a fill
    # twice (a restarted router re-sends the fills it finds again; the store skips the repeat by
    # trade id), but only as the same trade.
    venue = {trade_key(t): (float(t["qty"]), float(t["price"])) for t in g.venue_trades()}
    applied = g.applied_fills()
    assert set(applied) == set(venue)
    for trade_id, (qty, price) in applied.items():
        assert (qty, price) == pytest.approx(venue[trade_id]), trade_id
    for f in g.fills():
        assert (f.qty, f.price) == pytest.approx(venue[f.trade_id]), f

    def store_is_venue() -> bool:
        return g.store_positions() == {s: pytest.approx(q) for s, q in g.venue_positions().items()}

    g.inst.wait_for(store_is_venue, timeout, "the store to hold the venue's positions", interval=0.5)


@pytest.mark.parametrize("program", ["router", "exchange"])
def test_kill9_mid_order_never_places_an_intent_twice(group: Group, program: str) -> None:
    g = group
    before = len(_lost_orders(g))
    # The next order is executed by the venue but its answer is held, then the connection dropped:
    # the caller cannot know whether it was placed. Kill the program while it waits.
    # Armed until cleared: an order the venue refuses (a post-only that would cross) consumes it too.
    fault = g.fake.arm("order_unknown", mode="timeout", delay_s=3.0, path="/fapi/v1/order", method="POST")
    try:
        g.inst.wait_for(lambda: len(_lost_orders(g)) > before, 60, "an order placed with its answer held",
                        interval=0.05)
    finally:
        g.fake.clear(fault)
    lost = _lost_orders(g)[-1]
    cid = lost["params"]["newClientOrderId"]
    old = g.kill9(program)
    g.wait_restarted(program, old, timeout=60)
    # The intent goes on after the restart without a second order under the same id; the venue's
    # order is found by its client id and its fills are committed.
    intent_id = cid.rsplit(".", 1)[0]
    g.inst.wait_for(lambda: any(o.intent_id == intent_id and o.intent_done for o in _updates(g)), 90,
                    f"intent {intent_id} to finish after the restart")
    assert [o["clientOrderId"] for o in g.venue_orders()].count(cid) == 1
    assert_consistent(g)


def _updates(g: Group) -> list[Any]:
    from tests.trading.group import committed, of_type

    return [r.msg for r in of_type(committed(g.inst), "order_updated")]


def test_fills_made_while_the_user_stream_is_down_are_recovered_once(group: Group) -> None:
    g = group
    connects = _metric(g, "exchange", "v7_venue_user_stream_connects_total") or 0.0
    recovered = _metric(g, "exchange", "v7_venue_recovered_fills_total") or 0.0
    trades_before = {trade_key(t) for t in g.venue_trades()}
    # The user-data stream goes silent (events dropped, connection open) and new connections are
    # refused: trades made now reach the group only through REST.
    silent = g.fake.arm("user_stream_silent")
    refuse = g.fake.arm("ws_refuse", scope="user")
    g.inst.wait_for(lambda: len({trade_key(t) for t in g.venue_trades()} - trades_before) >= 2, 60,
                    "two venue trades while the user stream is down", interval=0.2)
    gap = {trade_key(t) for t in g.venue_trades()} - trades_before
    g.fake.clear(refuse)
    g.fake.clear(silent)
    g.fake.drop_connections("user")  # the adapter reconnects and reads userTrades since the gap

    def reconnected() -> bool:
        return (_metric(g, "exchange", "v7_venue_user_stream_connects_total") or 0.0) > connects

    g.inst.wait_for(reconnected, 30, "the user stream to reconnect")
    # The adapter read the gap's trades back from userTrades (the stream never showed them).
    g.inst.wait_for(lambda: (_metric(g, "exchange", "v7_venue_recovered_fills_total") or 0) - recovered
                    >= len(gap), 30,
                    "the gap's fills recovered from userTrades")
    g.inst.wait_for(lambda: gap <= {f.trade_id for f in g.fills()}, 30, "the gap's trades committed")
    assert_consistent(g)


def test_an_ip_ban_stops_orders_and_shows_degraded_until_it_ends(group: Group) -> None:
    g = group
    start = len(g.fake.request_log())
    g.fake.arm("ip_ban", count=1, retry_after=6)

    def banned() -> bool:
        return _metric(g, "exchange", "v7_venue_banned") == 1.0

    g.inst.wait_for(banned, 30, "the gateway to report the ban (v7_venue_banned 1)", interval=0.1)
    first_418 = next(i for i, r in enumerate(g.fake.request_log()[start:], start) if r.get("status") == 418)

    def degraded_shown() -> bool:
        doc = g.state_file("runtime_diagnostics") or {}
        actor = doc.get("runtime_diagnostics", {}).get("actors", {}).get("exchange", {})
        return actor.get("status") == "degraded" and "418" in actor.get("detail", "")

    g.inst.wait_for(degraded_shown, 20, "runtime_diagnostics to show the gateway degraded by the ban")
    settings = g.inst.settings
    with urllib.request.urlopen(f"http://{settings.dashboard.host}:{settings.dashboard.port}/api/view",
                                timeout=5) as resp:
        view = json.loads(resp.read())
    row = next(a for a in view["liveness"]["actors"] if a["name"] == "exchange")
    assert row["status"] == "degraded" and "418" in row["detail"], row
    # Nothing reaches the venue while the ban lasts: the venue answers 418 to every request until
    # the ban's end, so a request sent meanwhile would show as another 418 (the adapter refuses
    # locally until the end the venue named).
    g.inst.wait_for(lambda: _metric(g, "exchange", "v7_venue_banned") == 0.0, 30, "the ban to end", interval=0.2)
    again = [r for r in g.fake.request_log()[first_418 + 1:] if r.get("status") == 418]
    assert again == [], again
    # Orders go again after the ban, and the degraded state clears.
    placed = sum(1 for r in g.fake.request_log() if r["path"] == "/fapi/v1/order" and r["method"] == "POST")
    g.inst.wait_for(lambda: sum(1 for r in g.fake.request_log() if r["path"] == "/fapi/v1/order"
                                and r["method"] == "POST") > placed, 60, "an order after the ban")
    g.inst.wait_for(lambda: not degraded_shown(), 20, "the degraded state to clear")
    assert_consistent(g)


def test_the_whole_group_killed_and_restarted_reconciles_with_the_venue(group: Group) -> None:
    g = group
    g.inst.wait_for(lambda: bool(g.venue_positions()), 60, "an open venue position", interval=0.2)
    rpc = supervisor_proxy(g.inst.settings).supervisor
    pids = [p["pid"] for p in rpc.getAllProcessInfo() if p["pid"]]
    # kill -9 of everything at once: supervisord first (it would restart its programs), then each
    # program (supervisord gives each its own process group).
    os.kill(g.supervisord.pid, signal.SIGKILL)
    g.supervisord.wait(timeout=10)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        _wait_gone(pid)
    # While the group is down the venue goes on: a resting order may fill, positions stay open.
    trades_down = {trade_key(t) for t in g.venue_trades()}
    with supervised_group(g.inst) as proc:
        g.supervisord = proc
        g.inst.wait_for(lambda: trades_down <= {f.trade_id for f in g.fills()}, 40,
                        "every trade made before the restart committed")
        assert_consistent(g)
        out = g.inst.run_cli("flatten", "--reason", "end of test", "--timeout", "30", timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert g.venue_positions() == {}
        assert_consistent(g)


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return  # a zombie of the killed supervisord: gone for our purpose
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive {timeout}s after SIGKILL")
