"""The key and secret never reach a log line, an exception message, a repr or a status model."""

from __future__ import annotations

import logging

import pytest

from exchange.adapter import OrderRequest
from exchange.binance_usdm import BinanceUsdmAdapter
from exchange.errors import ExchangeError
from tests.binance.conftest import RecordingSink, make_adapter, traded
from tests.venue.binance import BinanceFake, FaultKind
from tests.venue.conftest import Creds


def test_key_and_secret_never_logged_or_raised(fake: BinanceFake, creds: Creds, caplog: pytest.LogCaptureFixture,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, ccxt's request headers and websockets' frames included
    errors: list[ExchangeError] = []
    adapter = make_adapter(fake, creds, user_silence_s=1.0)
    wrong = make_adapter(fake, Creds(creds.api_key, "0" * 64), check=False)
    sink = RecordingSink()
    try:
        adapter.attach(sink)
        assert adapter.wait_streams(10.0)
        adapter.place_order(OrderRequest(client_order_id="z-1.1", symbol="BTCUSDT", side="BUY",
                                         order_type="MARKET", qty=0.01))
        sink.wait_for(traded("z-1.1", 0.01))
        fake.arm(FaultKind.ORDER_UNKNOWN, count=1, mode="disconnect")
        adapter.place_order(OrderRequest(client_order_id="z-2.1", symbol="BTCUSDT", side="SELL",
                                         order_type="MARKET", qty=0.01))
        fake.expire_listen_keys(creds.api_key)
        sink.wait_for(lambda _e: adapter.stream_status.user_resyncs >= 2)
        for failing in (
            wrong.fetch_balance,
            wrong.check_account,
            lambda: adapter.place_order(OrderRequest(client_order_id="z-3.1", symbol="BTCUSDT", side="SELL",
                                                     order_type="MARKET", qty=0.5, reduce_only=True)),
            lambda: (fake.arm(FaultKind.IP_BAN, count=1, retry_after=60), adapter.fetch_positions()),
            lambda: adapter.place_order(OrderRequest(client_order_id="z-4.1", symbol="BTCUSDT", side="BUY",
                                                     order_type="MARKET", qty=0.01)),
        ):
            with pytest.raises(ExchangeError) as exc:
                failing()
            errors.append(exc.value)
        listen_keys = [k["listenKey"] for k in fake.state()["listen_keys"]]
        views = [repr(adapter), adapter.settings.model_dump_json(), adapter.stream_status.model_dump_json(),
                 adapter.rate_limit.model_dump_json(), repr(adapter._credentials)]
    finally:
        adapter.close()
        wrong.close()
    captured = capsys.readouterr()
    assert any("X-MBX-APIKEY" in r.getMessage() for r in caplog.records)  # the headers were logged, masked
    texts = {"log": caplog.text, "stdout": captured.out, "stderr": captured.err,
             "errors": "\n".join(f"{type(e).__name__} {e} {e.detail!r}" for e in errors), "views": "\n".join(views)}
    for where, text in texts.items():
        for secret in (creds.api_key, creds.secret, *listen_keys):
            assert secret not in text, f"a secret appeared in {where}"


def test_secrets_absent_from_error_chain_of_client_errors(fake: BinanceFake) -> None:
    adapter: BinanceUsdmAdapter = make_adapter(fake, None, check=False)
    try:
        with pytest.raises(ExchangeError) as exc:
            adapter.fetch_orders("BTCUSDT")
        assert exc.value.code == "no_credentials" and exc.value.__cause__ is None
    finally:
        adapter.close()
