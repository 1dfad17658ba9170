"""The whole group in LIVE testnet mode trading on the fake Binance venue (one group for the module).

The tests run in file order on one group: it trades, the hub's record and the store agree with
the venue, `v7 flatten` leaves the venue flat with reduce-only orders, and after all of it no
file under the instance home, no metrics scrape and no dashboard answer holds the API secret.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import ACTORS
from tests.harness import REPO
from tests.live.group import Group, live_group, trade_key

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    with live_group(tmp_path_factory.mktemp("live") / "home") as g:
        yield g


def _round_trip_and_maker_fill(g: Group) -> bool:
    """A reduce-only order filled on the venue (a position opened and closed there), and a maker
    trade (its rebate, a negative commission, has reached the group)."""
    return any(o["reduceOnly"] and o["status"] == "FILLED" for o in g.venue_orders()) \
        and any(t["maker"] for t in g.venue_trades())


def test_the_group_trades_on_the_venue_and_the_hub_commits_every_fill_once(group: Group) -> None:
    g = group
    g.inst.wait_for(lambda: _round_trip_and_maker_fill(g), 60, "a round trip and a maker fill on the venue",
                    interval=0.25)
    # Every venue order of the group is one of its intents' child orders ("<intent_id>.<n>").
    orders = g.venue_orders()
    intents = g.intents()  # read after the orders: an intent is committed before its orders are placed
    assert orders and all(o["clientOrderId"].rsplit(".", 1)[0] in intents for o in orders), orders
    # Every venue trade is committed by the hub exactly once (the user-data stream and any REST
    # read-back may both show it), with the venue's quantity, price and side.
    trades = {trade_key(t): t for t in g.venue_trades()}

    def all_committed() -> bool:
        return set(trades) <= {f.trade_id for f in g.fills()}

    g.inst.wait_for(all_committed, 20, "every venue trade committed as order_filled", interval=0.25)
    fills = g.fills()
    counts = Counter(f.trade_id for f in fills)
    assert max(counts.values()) == 1, [t for t, n in counts.items() if n > 1]
    for f in fills:
        t = trades.get(f.trade_id) or next(x for x in g.venue_trades() if trade_key(x) == f.trade_id)
        assert (f.symbol, f.side, f.mode, f.account) == (t["symbol"], t["side"], "LIVE", "testnet-1")
        assert f.qty == pytest.approx(float(t["qty"])) and f.price == pytest.approx(float(t["price"]))
        assert f.liquidity == ("maker" if t["maker"] else "taker")
        # A maker rebate (negative commission) is recorded as no fee: fees in the store are costs.
        assert f.fee == pytest.approx(max(0.0, float(t["commission"])))
    assert any(float(trades[f.trade_id]["commission"]) < 0 for f in fills if f.trade_id in trades)
    # The positions store applied each of them once (its fill table is unique by trade id).
    g.inst.wait_for(lambda: set(trades) <= set(g.applied_fills()), 10, "the store to apply every venue trade")


def test_store_positions_and_state_files_agree_with_the_venue(group: Group) -> None:
    g = group

    def agree() -> bool:
        venue = g.venue_positions()
        store = g.store_positions()
        doc = g.state_file("positions_state")
        if store is None or doc is None:
            return False
        rows = {r["symbol"]: r["qty"] * (1 if r["side"] == "LONG" else -1) for r in doc["positions"] if r["qty"]}
        same = lambda a, b: set(a) == set(b) and all(abs(a[s] - b[s]) < 1e-9 for s in a)  # noqa: E731
        return same(venue, store) and same(venue, rows)

    g.inst.wait_for(agree, 30, "store, positions_state.json and the venue to hold the same positions", interval=0.2)
    validated = g.inst.run_cli("validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    nav = g.state_file("nav_state")
    assert nav is not None and nav["scope"]["mode"] == "LIVE" and nav["scope"]["network"] == "testnet"
    balance = float(g.fake.balance(g.creds.api_key) or 0)
    assert nav["nav_total"] == pytest.approx(balance, rel=0.01)


def test_flatten_closes_the_venue_positions_with_reduce_only_orders(group: Group) -> None:
    g = group
    # A position may close by its own exit between the wait and flatten's read of the venue; then
    # flatten has nothing to close: resume and try again, so that it is seen closing one.
    for _attempt in range(3):
        g.inst.wait_for(lambda: bool(g.venue_positions()), 40, "an open position on the venue", interval=0.2)
        out = g.inst.run_cli("flatten", "--reason", "test", "--timeout", "30", timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr + g.log("router")[-3000:]
        assert g.venue_positions() == {}
        if "closing " in out.stdout:
            break
        assert g.inst.run_cli("resume", "--reason", "test again").returncode == 0
    else:
        raise AssertionError("flatten never found an open position to close")
    manual = [i for i in g.intents().values() if getattr(i, "purpose", "") == "exit_manual"]
    assert manual and all(i.reduce_only for i in manual)  # type: ignore[union-attr]
    flatten_orders = [o for o in g.venue_orders() if o["clientOrderId"].startswith("fl-")]
    assert all(o["reduceOnly"] for o in flatten_orders), flatten_orders
    # Entries stay halted: the store empties and nothing opens again on the venue.
    g.inst.wait_for(lambda: g.store_positions() == {}, 20, "the store to show the scope flat")
    assert not [o for o in g.venue_orders() if o["status"] in ("NEW", "PARTIALLY_FILLED")
                and not o["reduceOnly"]]


def _get(url: str, limit: int | None = None) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read(limit) if limit else resp.read()


def test_the_api_secret_is_nowhere_in_the_instance(group: Group) -> None:
    g = group
    settings = g.inst.settings
    # Let the venue's account events of the flatten and the last documents land first.
    def flat_file() -> bool:
        doc = g.state_file("positions_state")
        return doc is not None and not any(r["qty"] for r in doc["positions"])

    g.inst.wait_for(flat_file, 20, "positions_state to show the venue flat")
    scrapes = g.inst.home / "scrapes"
    scrapes.mkdir()
    for actor in ACTORS:
        if actor == "dashboard":
            continue
        (scrapes / f"{actor}.metrics").write_bytes(_get(f"http://{settings.metrics_host}:"
                                                        f"{settings.metrics_port(actor)}/metrics"))
    base = f"http://{settings.dashboard.host}:{settings.dashboard.port}"
    (scrapes / "index.html").write_bytes(_get(f"{base}/"))
    view = _get(f"{base}/api/view")
    (scrapes / "view.json").write_bytes(view)
    (scrapes / "events.txt").write_bytes(_get(f"{base}/api/events", limit=4096))
    trading = json.loads(view)["trading"]
    assert (trading["mode"], trading["network"], trading["halted"]) == ("LIVE", "testnet", True)
    # The venue alerts (config/prometheus/rules.yml) watch series this gateway really exports.
    exported = (scrapes / "exchange.metrics").read_text()
    rules = (REPO / "config" / "prometheus" / "rules.yml").read_text()
    for alert in ("V7VenueBanned", "V7VenueStreamDown"):
        expr = re.search(rf"- alert: {alert}\n\s+expr: (.+)", rules)
        assert expr is not None, alert
        for name in re.findall(r"v7_venue_\w+", expr.group(1)):
            assert re.search(rf"^{name}[ {{]", exported, re.M), (alert, name)
    assert 'v7_venue_stream_connected{stream="user"} 1.0' in exported
    assert "v7_venue_banned 0.0" in exported
    secret = g.creds.secret.encode()
    files = [p for p in g.inst.home.rglob("*") if p.is_file()]
    names = {p.relative_to(g.inst.home).parts[0] for p in files}
    assert {"logs", "scrapes", "runtime.toml"} <= names, names
    assert any(p.suffix == ".db" for p in files) and any("journal" in p.parts for p in files)
    leaks = [str(p) for p in files if secret in _read(p)]
    assert leaks == [], f"the API secret appears in {leaks}"
    # The key is not a secret to Binance's servers, but it has no business in what we store either.
    stored = [p for p in files if "state" in p.parts or "journal" in p.parts or p.suffix == ".db"]
    assert not [str(p) for p in stored if g.creds.api_key.encode() in _read(p)]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a socket or a file removed meanwhile
        return b""
