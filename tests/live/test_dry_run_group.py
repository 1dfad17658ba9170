"""The whole group in DRY_RUN: the venue's market data, the paper engine's fills, and nothing
sent to the venue's order or account endpoints (the group has no keys at all)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.group import live_group

pytestmark = pytest.mark.timeout(120)


def test_dry_run_trades_on_venue_prices_with_paper_fills_and_sends_no_order(tmp_path: Path) -> None:
    with live_group(tmp_path / "home", mode="DRY_RUN") as g:
        g.inst.wait_for(lambda: bool(g.fills()), 60, "a paper fill in the journal", interval=0.25)
        fills = g.fills()
        assert all((f.mode, f.account) == ("DRY_RUN", "testnet-1") for f in fills)
        # The paper engine filled at the venue's prices: the fake's books, not the paper simulator's
        # own start prices (BTC 65000 / ETH 3200 there; 60000 / 3000 on the fake, moving slowly).
        books = g.fake.state()["books"]
        for f in fills:
            bid = float(books[f.symbol]["bidPrice"])
            assert abs(f.price - bid) / bid < 0.01, (f.symbol, f.price, bid)
        nav = g.state_file("nav_state")
        assert nav is not None and (nav["scope"]["mode"], nav["scope"]["network"]) == ("DRY_RUN", "paper")
        requests = g.fake.request_log()
        assert requests, "the group never asked the venue for anything"
        market_only = {"/fapi/v1/exchangeInfo", "/fapi/v1/klines", "/fapi/v1/time", "/fapi/v1/ping",
                       "/fapi/v1/ticker/bookTicker", "/fapi/v1/premiumIndex", "/fapi/v1/depth"}
        sent = {(r["method"], r["path"]) for r in requests}
        assert {path for _m, path in sent} <= market_only, sent
        assert all(r["api_key"] is None for r in requests)
        assert g.fake.state()["accounts"] == {} or all(not a["orders"] for a in g.fake.state()["accounts"].values())
