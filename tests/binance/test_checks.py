"""The start-up check: what it sets, and what it refuses with the fix named."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.adapter import OrderRequest
from exchange.binance_usdm import AccountNotReady, ApiCredentials, BinanceSettings, BinanceUsdmAdapter
from exchange.binance_usdm.config import NETWORKS
from exchange.errors import BadRequest
from tests.binance.conftest import make_adapter
from tests.venue.binance import BinanceFake, FaultKind
from tests.venue.conftest import Creds, new_creds


def account(fake: BinanceFake, creds: Creds) -> Any:
    """The fake's account object of the key (read on the venue's loop)."""
    return fake.call(lambda v: v.engine.account(creds.api_key))


def test_check_sets_leverage_and_margin_type_and_loads_filters(fake: BinanceFake, creds: Creds) -> None:
    adapter = make_adapter(fake, creds, check=False)
    try:
        report = adapter.check_account(leverage={"BTCUSDT": 5, "ETHUSDT": 8}, margin_type="ISOLATED")
        assert report.ok and report.one_way is True and report.futures_enabled is True
        assert report.leverage == {"BTCUSDT": 5, "ETHUSDT": 8}
        assert report.margin_type == {"BTCUSDT": "ISOLATED", "ETHUSDT": "ISOLATED"}
        assert abs(report.time_offset_ms) < 1000 and report.instruments["ETHUSDT"].tick_size == 0.01
        assert "BTCUSDT leverage 20x -> 5x" in report.changed
        acc = account(fake, creds)
        assert acc.leverage == {"BTCUSDT": 5, "ETHUSDT": 8} and acc.margin_type["BTCUSDT"] == "ISOLATED"
        again = adapter.check_account(leverage={"BTCUSDT": 5, "ETHUSDT": 8}, margin_type="ISOLATED")
        assert again.ok and again.changed == []  # nothing to change: no request, no -4046
    finally:
        adapter.close()


def test_dual_side_account_is_refused_before_any_order(fake: BinanceFake, creds: Creds) -> None:
    fake.call(lambda v: v.engine.set_dual_side(creds.api_key, True))
    adapter = make_adapter(fake, creds, check=False)
    try:
        with pytest.raises(AccountNotReady) as exc:
            adapter.check_account(leverage=10)
        problems = exc.value.problems
        assert [p.check for p in problems] == ["position_mode"]
        assert "One-way" in problems[0].fix and "Hedge mode" in str(exc.value)
        with pytest.raises(BadRequest) as refused:
            adapter.place_order(OrderRequest(client_order_id="h-1.1", symbol="BTCUSDT", side="BUY",
                                             order_type="MARKET", qty=0.01))
        assert refused.value.code == "account_not_checked"
        assert not [r for r in fake.request_log() if r["path"] == "/fapi/v1/order"]  # -4061 never reached
    finally:
        adapter.close()


def test_key_without_futures_permission_is_named(fake: BinanceFake) -> None:
    creds = new_creds()
    fake.add_key(creds.api_key, creds.secret, enable_futures=False)
    adapter = make_adapter(fake, creds, check=False)
    try:
        report = adapter.check_account(leverage=10, raise_on_problem=False)
        assert not report.ok and report.futures_enabled is False
        assert [p.check for p in report.problems] == ["api_key"] and "Enable Futures" in report.problems[0].fix
    finally:
        adapter.close()


def test_wrong_secret_is_named(fake: BinanceFake, creds: Creds) -> None:
    adapter = make_adapter(fake, Creds(creds.api_key, "f" * 64), check=False)
    try:
        report = adapter.check_account(raise_on_problem=False)
        assert [p.check for p in report.problems] == ["api_key"]
        assert "signature" in report.problems[0].detail or "refused" in report.problems[0].detail
    finally:
        adapter.close()


def test_margin_type_that_cannot_change_and_unlisted_symbol(fake: BinanceFake, creds: Creds) -> None:
    first = make_adapter(fake, creds)
    first.place_order(OrderRequest(client_order_id="mt-1.1", symbol="BTCUSDT", side="BUY", order_type="MARKET",
                                   qty=0.01))
    first.close()
    adapter = make_adapter(fake, creds, check=False, symbols=["BTCUSDT", "DOGEUSDT"])
    try:
        report = adapter.check_account(leverage=10, margin_type="ISOLATED", raise_on_problem=False)
        found = {(p.check, p.symbol) for p in report.problems}
        assert found == {("margin_type", "BTCUSDT"), ("symbol", "DOGEUSDT")}
        margin = next(p for p in report.problems if p.check == "margin_type")
        assert "close BTCUSDT's position" in margin.fix
        checked = adapter.check_account(leverage=10, margin_type="ISOLATED", fix=False, symbols=["BTCUSDT"],
                                        raise_on_problem=False)
        assert [p.check for p in checked.problems] == ["margin_type"]
    finally:
        adapter.close()


def test_time_offset_is_measured(fake: BinanceFake, creds: Creds) -> None:
    fake.arm(FaultKind.CLOCK_DRIFT, offset_ms=-45_000)
    adapter = make_adapter(fake, creds, check=False)
    try:
        report = adapter.check_account()
        assert report.time_offset_ms == pytest.approx(-45_000, abs=500)
        assert adapter.time_offset_ms == pytest.approx(report.time_offset_ms, abs=1)
        assert adapter.fetch_balance().wallet_balance > 0  # signed requests carry the venue's time
    finally:
        adapter.close()


def test_networks_and_overrides() -> None:
    assert BinanceSettings(network="mainnet").endpoints() == NETWORKS["mainnet"]
    assert NETWORKS["testnet"].sapi is None and NETWORKS["demo"].rest == "https://demo-fapi.binance.com"
    overridden = BinanceSettings(network="mainnet", rest_url="http://127.0.0.1:9/", ws_url="ws://127.0.0.1:9")
    endpoints = overridden.endpoints()
    assert endpoints.rest == "http://127.0.0.1:9" and endpoints.sapi == "http://127.0.0.1:9/sapi/v1"
    assert endpoints.ws == "ws://127.0.0.1:9"
    with pytest.raises(ValueError):
        BinanceSettings(rest_url="ftp://x")
    adapter = BinanceUsdmAdapter(BinanceSettings(network="testnet"), ["BTCUSDT"],
                                 ApiCredentials(api_key="k" * 10, secret="s" * 10))
    assert "testnet.binancefuture.com" in repr(adapter)  # built offline: nothing is sent until a call
