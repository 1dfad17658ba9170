"""The fake speaks Binance USDⓈ-M as ccxt's binanceusdm understands it (REST, through ccxt)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.venue.binance import BinanceFake, FaultKind, VenueConfig
from tests.venue.binance.ccxt_client import make_binanceusdm
from tests.venue.conftest import FAST, Creds, new_creds

BTC = "BTC/USDT:USDT"


def code_of(exc: BaseException) -> int:
    """The Binance code in a ccxt error message ("binanceusdm {"code":-2022,...}")."""
    text = str(exc)
    return int(json.loads(text[text.index("{"):])["code"])


def order_status(fake: BinanceFake, api_key: str, client_id: str) -> str | None:
    for order in fake.orders(api_key):
        if order["clientOrderId"] == client_id:
            return order["status"]
    return None


def paused_at(fake: BinanceFake, bid: str) -> dict[str, Any]:
    return fake.set_price("BTCUSDT", bid)


# --- markets and market data --------------------------------------------------------------------


def test_load_markets_touches_only_exchange_info(fake: BinanceFake, creds: Creds) -> None:
    client = make_binanceusdm(fake.rest_url, creds.api_key, creds.secret, enableRateLimit=False)
    markets = client.load_markets()
    assert set(markets) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert [(e["method"], e["path"]) for e in fake.request_log()] == [("GET", "/fapi/v1/exchangeInfo")]
    btc = markets[BTC]
    assert btc["swap"] and btc["linear"] and btc["active"] and btc["settle"] == "USDT"
    assert btc["precision"] == {"amount": 0.001, "price": 0.1, "base": 1e-08, "quote": 1e-08}
    assert btc["limits"]["amount"] == {"min": 0.001, "max": 1000.0}
    assert btc["limits"]["market"] == {"min": 0.001, "max": 120.0}
    assert btc["limits"]["cost"]["min"] == 100.0
    info = btc["info"]
    assert info["contractType"] == "PERPETUAL" and info["status"] == "TRADING"
    filters = {f["filterType"]: f for f in info["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.1"
    assert filters["MIN_NOTIONAL"]["notional"] == "100"


def test_public_market_data(exchange: Any, fake: BinanceFake) -> None:
    assert abs(exchange.fetch_time() - time.time() * 1000) < 5000
    assert int(exchange.last_response_headers["X-MBX-USED-WEIGHT-1M"]) >= 2
    paused_at(fake, "60000.0")
    ticker = exchange.fetch_ticker(BTC)
    assert ticker["last"] == 60000.0
    book = exchange.fetch_order_book(BTC, 5)
    assert book["bids"][0][0] == 60000.0 and book["asks"][0][0] == 60000.1 and len(book["bids"]) == 5
    raw = exchange.fapiPublicGetTickerBookTicker({"symbol": "BTCUSDT"})
    assert raw["bidPrice"] == "60000.00" and raw["askPrice"] == "60000.10"
    assert isinstance(raw["bidQty"], str) and isinstance(raw["time"], int)
    mark = exchange.fetch_mark_price(BTC)
    assert mark["markPrice"] == 60000.05
    assert exchange.fapiPublicGetPremiumIndex({"symbol": "BTCUSDT"})["markPrice"] == "60000.05000000"
    bars = exchange.fetch_ohlcv(BTC, "1m", limit=5)
    assert len(bars) == 5 and all(len(b) == 6 for b in bars)
    assert bars[-1][0] - bars[-2][0] == 60_000
    with pytest.raises(ccxt.BadRequest) as bad:
        exchange.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})
    assert code_of(bad.value) == -1120


# --- orders through ccxt ------------------------------------------------------------------------


def test_market_order_position_balance_trades(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    paused_at(fake, "60000.0")
    order = exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "open-1"})
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["average"] == 60000.1
    assert order["clientOrderId"] == "open-1"
    assert exchange.last_response_headers["X-MBX-ORDER-COUNT-1M"] == "1"
    assert exchange.last_response_headers["X-MBX-ORDER-COUNT-10S"] == "1"
    fetched = exchange.fetch_order(None, BTC, params={"origClientOrderId": "open-1"})
    assert fetched["id"] == order["id"] and fetched["status"] == "closed"

    positions = exchange.fetch_positions([BTC])
    assert len(positions) == 1
    assert positions[0]["side"] == "long" and positions[0]["contracts"] == 0.01
    assert positions[0]["entryPrice"] == 60000.1

    fee = Decimal("0.01") * Decimal("60000.1") * Decimal("0.0005")
    balance = exchange.fetch_balance()
    wallet = Decimal("10000") - fee.quantize(Decimal("1e-8"))
    assert Decimal(balance["info"]["totalWalletBalance"]) == wallet == Decimal(fake.balance(creds.api_key) or "0")
    unrealized = Decimal("0.01") * (Decimal("60000.05") - Decimal("60000.1"))  # mark is the mid
    assert Decimal(str(balance["USDT"]["total"])) == wallet + unrealized

    paused_at(fake, "60100.0")
    close = exchange.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    assert close["status"] == "closed" and close["reduceOnly"] is True
    assert exchange.fetch_positions([BTC]) == []
    trades = exchange.fetch_my_trades(BTC)
    assert [t["side"] for t in trades] == ["buy", "sell"]
    assert trades[1]["info"]["realizedPnl"] == "0.99900000"  # (60100.0 - 60000.1) * 0.01
    assert trades[0]["fee"]["currency"] == "USDT" and trades[0]["takerOrMaker"] == "taker"
    assert int(trades[1]["id"]) > int(trades[0]["id"])
    since_second = exchange.fetch_my_trades(BTC, params={"fromId": trades[1]["id"]})
    assert [t["id"] for t in since_second] == [trades[1]["id"]]
    assert exchange.fetch_my_trades(BTC, since=trades[1]["timestamp"] + 1) == []
    assert exchange.fetch_my_trades(BTC, limit=1)[0]["id"] == trades[1]["id"]


def test_limit_rests_then_fills_when_the_walk_crosses(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    paused_at(fake, "60000.0")
    order = exchange.create_order(BTC, "limit", "buy", 0.02, 59990.0, params={"newClientOrderId": "rest-1"})
    assert order["status"] == "open" and order["filled"] == 0.0
    assert [o["clientOrderId"] for o in exchange.fetch_open_orders(BTC)] == ["rest-1"]
    paused_at(fake, "59980.0")
    fake.wait_until(lambda v: any(o.client_order_id == "rest-1" and o.status == "FILLED"
                                  for a in v.engine.accounts.values() for o in a.orders.values()), 5)
    filled = exchange.fetch_order(order["id"], BTC)
    assert filled["status"] == "closed" and filled["average"] == 59990.0
    trade = exchange.fetch_my_trades(BTC)[-1]
    assert trade["takerOrMaker"] == "maker" and trade["price"] == 59990.0
    assert exchange.fetch_open_orders(BTC) == []


def test_resting_order_larger_than_the_touch_fills_partially(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    paused_at(fake, "60000.0")
    exchange.set_leverage(50, BTC)
    # The touch shows at most 1.5 x top_qty (2.5 BTC): 3.9 BTC cannot fill in one tick.
    order = exchange.create_order(BTC, "limit", "sell", 3.9, 60050.0)
    fake.set_price("BTCUSDT", "60060.0")
    fake.wait_until(lambda v: v.engine.accounts[creds.api_key].orders[int(order["id"])].executed_qty > 0, 5)
    partial = exchange.fetch_order(order["id"], BTC)
    assert partial["status"] == "open" and 0 < partial["filled"] < 3.9
    assert partial["info"]["status"] == "PARTIALLY_FILLED"


def test_cancel_and_open_orders(exchange: Any, fake: BinanceFake) -> None:
    paused_at(fake, "60000.0")
    first = exchange.create_order(BTC, "limit", "buy", 0.01, 59000.0, params={"newClientOrderId": "c-1"})
    exchange.create_order("ETH/USDT:USDT", "limit", "sell", 0.1, 3500.0)
    assert len(exchange.fapiPrivateGetOpenOrders()) == 2
    canceled = exchange.cancel_order(first["id"], BTC)
    assert canceled["status"] == "canceled"
    assert exchange.fetch_order(None, BTC, params={"origClientOrderId": "c-1"})["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound) as again:
        exchange.cancel_order(first["id"], BTC)
    assert code_of(again.value) == -2011
    with pytest.raises(ccxt.OrderNotFound) as missing:
        exchange.fetch_order("123", BTC)
    assert code_of(missing.value) == -2013
    exchange.options["fetchOpenOrders"]["warnWithoutSymbol"] = False
    assert [o["symbol"] for o in exchange.fetch_open_orders()] == ["ETH/USDT:USDT"]
    assert len(exchange.fapiPrivateGetAllOrders({"symbol": "BTCUSDT"})) == 1


def test_post_only_that_would_cross_is_rejected(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    paused_at(fake, "60000.0")
    with pytest.raises(ccxt.InvalidOrder) as rejected:
        exchange.create_order(BTC, "limit", "buy", 0.01, 60000.1, params={"postOnly": True})
    assert code_of(rejected.value) == -5022
    assert "the Post Only order will be rejected" in str(rejected.value)
    assert fake.orders(creds.api_key) == []
    maker = exchange.create_order(BTC, "limit", "buy", 0.01, 60000.0, params={"postOnly": True})
    assert maker["info"]["timeInForce"] == "GTX" and maker["status"] == "open"


def test_reduce_only_and_min_notional_rejections(exchange: Any, fake: BinanceFake) -> None:
    paused_at(fake, "60000.0")
    with pytest.raises(ccxt.ExchangeError) as reduce:
        exchange.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    assert code_of(reduce.value) == -2022
    assert "ReduceOnly Order is rejected." in str(reduce.value)
    with pytest.raises(ccxt.ExchangeError) as small:
        exchange.create_order(BTC, "limit", "buy", 0.001, 59000.0)
    assert code_of(small.value) == -4164
    assert "Order's notional must be no smaller than 100 (unless you choose reduce only)." in str(small.value)
    exchange.create_order(BTC, "market", "buy", 0.002)
    # Reduce-only is exempt from the notional filter, and a larger quantity closes only the position.
    closed = exchange.create_order(BTC, "market", "sell", 0.005, params={"reduceOnly": True})
    assert closed["filled"] == 0.002 and closed["info"]["status"] == "EXPIRED"
    with pytest.raises(ccxt.ExchangeError) as margin:
        exchange.create_order(BTC, "market", "buy", 100)
    assert code_of(margin.value) == -2019


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"quantity": "0.010", "price": "60000.05"}, -4014),
        ({"quantity": "0.010", "price": "60000.123"}, -1111),
        ({"quantity": "0.0105", "price": "59000.0"}, -1111),
        ({"quantity": "0", "price": "59000.0"}, -4003),
        ({"quantity": "1001", "price": "59000.0"}, -4005),
        ({"quantity": "0.010", "price": "100"}, -4013),
        ({"quantity": "0.010", "price": "abc"}, -1100),
        ({"quantity": "0.010"}, -1102),
        ({"quantity": "0.010", "price": "59000", "timeInForce": "DAY"}, -1115),
        ({"quantity": "0.010", "price": "59000", "newClientOrderId": "no spaces allowed"}, -4015),
        ({"quantity": "0.010", "price": "59000", "type": "STOP_MARKET"}, -4120),
        ({"quantity": "0.010", "price": "59000", "type": "BOGUS"}, -1116),
        ({"quantity": "0.010", "price": "59000", "side": "HOLD"}, -1117),
        ({"quantity": "0.010", "price": "59000", "symbol": "DOGEUSDT"}, -1121),
        ({"quantity": "0.010", "price": "59000", "positionSide": "LONG"}, -4061),
    ],
)
def test_order_filters_raw(exchange: Any, params: dict[str, str], code: int) -> None:
    request = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", **params}
    with pytest.raises(ccxt.ExchangeError) as rejected:
        exchange.fapiPrivatePostOrder(request)
    assert code_of(rejected.value) == code


def test_duplicate_client_order_id(exchange: Any, fake: BinanceFake) -> None:
    paused_at(fake, "60000.0")
    first = exchange.create_order(BTC, "limit", "buy", 0.01, 59000.0, params={"newClientOrderId": "dup-1"})
    with pytest.raises(ccxt.ExchangeError) as duplicate:
        exchange.create_order(BTC, "limit", "buy", 0.01, 58000.0, params={"newClientOrderId": "dup-1"})
    assert code_of(duplicate.value) == -4116
    exchange.cancel_order(first["id"], BTC)
    again = exchange.create_order(BTC, "limit", "buy", 0.01, 58000.0, params={"newClientOrderId": "dup-1"})
    assert exchange.fetch_order(None, BTC, params={"origClientOrderId": "dup-1"})["id"] == again["id"]


def test_hedge_mode_refusals(exchange: Any, fake: BinanceFake) -> None:
    paused_at(fake, "60000.0")
    assert exchange.fetch_position_mode(BTC)["hedged"] is False
    exchange.set_position_mode(True)
    with pytest.raises(ccxt.OperationRejected) as again:
        exchange.set_position_mode(True)
    assert code_of(again.value) == -4059
    with pytest.raises(ccxt.OperationRejected) as side:
        exchange.create_order(BTC, "market", "buy", 0.01)
    assert code_of(side.value) == -4061
    exchange.create_order(BTC, "market", "buy", 0.01, params={"hedged": True})
    exchange.create_order(BTC, "market", "sell", 0.01, params={"hedged": True})
    sides = {p["info"]["positionSide"]: p["contracts"] for p in exchange.fetch_positions([BTC])}
    assert sides == {"LONG": 0.01, "SHORT": 0.01}
    with pytest.raises(ccxt.BadRequest) as reduce:
        exchange.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01",
                                       "positionSide": "LONG", "reduceOnly": "true"})
    assert code_of(reduce.value) == -1106
    with pytest.raises(ccxt.OperationRejected) as locked:
        exchange.set_position_mode(False)
    assert code_of(locked.value) == -4068
    # Closing LONG: SELL with positionSide LONG (ccxt: hedged + reduceOnly).
    exchange.create_order(BTC, "market", "sell", 0.01, params={"hedged": True, "reduceOnly": True})
    exchange.create_order(BTC, "market", "buy", 0.01, params={"hedged": True, "reduceOnly": True})
    exchange.set_position_mode(False)


def test_leverage_margin_type_commission(exchange: Any) -> None:
    assert exchange.set_leverage(10, BTC)["leverage"] == 10
    with pytest.raises(ccxt.BadRequest) as bad:  # ccxt checks 1..125 itself: go around it
        exchange.fapiPrivatePostLeverage({"symbol": "BTCUSDT", "leverage": 0})
    assert code_of(bad.value) == -4028
    with pytest.raises(ccxt.MarginModeAlreadySet) as same:
        exchange.set_margin_mode("cross", BTC)
    assert code_of(same.value) == -4046
    exchange.set_margin_mode("isolated", BTC)
    assert exchange.fapiPrivateGetSymbolConfig({"symbol": "BTCUSDT"})[0]["marginType"] == "ISOLATED"
    fee = exchange.fetch_trading_fee(BTC)
    assert fee["maker"] == 0.0002 and fee["taker"] == 0.0005
    brackets = exchange.fapiPrivateGetLeverageBracket({"symbol": "BTCUSDT"})
    assert brackets["brackets"][0]["initialLeverage"] == 125


# --- keys, signatures, time ---------------------------------------------------------------------


def test_authentication_errors(fake: BinanceFake, creds: Creds) -> None:
    wrong_secret = make_binanceusdm(fake.rest_url, creds.api_key, "0" * 64, enableRateLimit=False)
    with pytest.raises(ccxt.AuthenticationError) as signature:
        wrong_secret.fapiPrivateV3GetAccount()
    assert code_of(signature.value) == -1022
    unknown = make_binanceusdm(fake.rest_url, "nobody", "x", enableRateLimit=False)
    with pytest.raises(ccxt.AuthenticationError) as key:
        unknown.fapiPrivateV3GetAccount()
    assert code_of(key.value) == -2015
    request = urllib.request.Request(f"{fake.rest_url}/fapi/v3/account?timestamp=1")
    with pytest.raises(urllib.error.HTTPError) as no_key:
        urllib.request.urlopen(request, timeout=5)
    assert no_key.value.code == 401 and json.loads(no_key.value.read())["code"] == -2014


def test_key_without_futures_permission(fake: BinanceFake) -> None:
    other = new_creds()
    fake.add_key(other.api_key, other.secret, enable_futures=False)
    client = make_binanceusdm(fake.rest_url, other.api_key, other.secret, enableRateLimit=False)
    assert client.sapiGetAccountApiRestrictions()["enableFutures"] is False
    with pytest.raises(ccxt.AuthenticationError) as denied:
        client.fapiPrivateV3GetAccount()
    assert code_of(denied.value) == -2015
    fake.set_key_permissions(other.api_key, enable_futures=True)
    assert client.sapiGetAccountApiRestrictions()["enableFutures"] is True
    client.fapiPrivateV3GetAccount()
    fault = fake.arm(FaultKind.NO_FUTURES_PERMISSION, api_key=other.api_key)
    assert client.sapiGetAccountApiRestrictions()["enableFutures"] is False
    with pytest.raises(ccxt.AuthenticationError):
        client.fapiPrivatePostListenKey()
    fake.clear(fault)
    client.fapiPrivatePostListenKey()


def test_clock_drift_gives_1021_until_the_client_resyncs(exchange: Any, fake: BinanceFake) -> None:
    fake.arm(FaultKind.CLOCK_DRIFT, offset_ms=30_000)  # the venue runs 30 s ahead of the client
    with pytest.raises(ccxt.InvalidNonce) as behind:
        exchange.fetch_balance()
    assert code_of(behind.value) == -1021
    assert "outside of the recvWindow" in str(behind.value)
    exchange.load_time_difference()
    exchange.fetch_balance()
    fake.clear(kind=FaultKind.CLOCK_DRIFT)
    exchange.options["timeDifference"] = 0
    fake.arm(FaultKind.CLOCK_DRIFT, offset_ms=-30_000, seconds=30)
    with pytest.raises(ccxt.InvalidNonce) as ahead_of_venue:
        exchange.fetch_balance()
    assert "ahead of the server's time" in str(ahead_of_venue.value)
    fake.clear()
    exchange.options["timeDifference"] = -5_000
    with pytest.raises(ccxt.InvalidNonce) as ahead:
        exchange.fetch_balance()
    assert "ahead of the server's time" in str(ahead.value)


# --- faults -------------------------------------------------------------------------------------


def test_rate_limit_and_ban_faults(exchange: Any, fake: BinanceFake) -> None:
    fake.arm(FaultKind.RATE_LIMIT, count=1, retry_after=7)
    with pytest.raises(ccxt.DDoSProtection) as limited:
        exchange.fetch_ticker(BTC)
    assert code_of(limited.value) == -1003
    assert exchange.last_response_headers["Retry-After"] == "7"
    exchange.fetch_ticker(BTC)
    fake.arm(FaultKind.IP_BAN, seconds=30)
    with pytest.raises(ccxt.DDoSProtection) as banned:
        exchange.fetch_balance()
    assert "banned until" in str(banned.value) and "418" in str(banned.value)
    fake.clear(kind="ip_ban")
    exchange.fetch_balance()


def test_weight_limit_then_automatic_ban(creds: Creds) -> None:
    config = VenueConfig(**FAST, weight_limit_1m=6, bans_after_429s=2, ban_seconds=60)
    with BinanceFake(config, keys={creds.api_key: creds.secret}) as fake:
        # Weight is counted per fixed clock minute: start this test one second into a minute.
        fake.call(lambda v: setattr(v.clock, "offset_ms", 1000 - time.time_ns() // 1_000_000 % 60_000))
        client = make_binanceusdm(fake.rest_url, creds.api_key, creds.secret, enableRateLimit=False)
        for _ in range(6):
            client.fapiPublicGetPing()
        assert client.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "6"
        statuses = []
        for _ in range(4):
            with pytest.raises(ccxt.DDoSProtection) as refused:
                client.fapiPublicGetPing()
            statuses.append(429 if " 429 " in str(refused.value) else 418)
        assert statuses == [429, 429, 418, 418]
        assert int(client.last_response_headers["Retry-After"]) > 0


def test_order_outcome_unknown(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    paused_at(fake, "60000.0")
    fake.arm(FaultKind.ORDER_UNKNOWN, count=1, mode="disconnect")
    with pytest.raises(ccxt.NetworkError):
        exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "lost-1"})
    assert exchange.fetch_order(None, BTC, params={"origClientOrderId": "lost-1"})["status"] == "closed"

    exchange.timeout = 300
    fake.arm(FaultKind.ORDER_UNKNOWN, count=1, mode="timeout", delay_s=3)
    with pytest.raises(ccxt.RequestTimeout):
        exchange.create_order(BTC, "limit", "buy", 0.01, 59000.0, params={"newClientOrderId": "lost-2"})
    exchange.timeout = 5000
    assert exchange.fetch_order(None, BTC, params={"origClientOrderId": "lost-2"})["status"] == "open"

    fake.arm(FaultKind.ORDER_UNKNOWN, count=1, mode="error", status=500, code=-1001,
             msg="Internal error; unable to process your request. Please try again.")
    with pytest.raises(ccxt.OperationFailed) as internal:
        exchange.create_order(BTC, "market", "sell", 0.01, params={"newClientOrderId": "lost-3"})
    assert code_of(internal.value) == -1001
    assert order_status(fake, creds.api_key, "lost-3") == "FILLED"

    fake.arm(FaultKind.ORDER_UNKNOWN, count=1, mode="error")
    with pytest.raises(ccxt.OperationFailed) as unknown:
        exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "lost-4"})
    assert code_of(unknown.value) == -1000
    assert order_status(fake, creds.api_key, "lost-4") == "FILLED"


def test_http_error_fault_has_no_effect(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    fake.arm(FaultKind.HTTP_ERROR, count=1, path="/fapi/v1/order")
    with pytest.raises(ccxt.OperationFailed):
        exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "never"})
    fake.arm(FaultKind.HTTP_ERROR, count=1, format="text", status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "never"})
    assert order_status(fake, creds.api_key, "never") is None


def test_forced_rejections_and_partial_fills(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    paused_at(fake, "60000.0")
    for code in (-2022, -4164, -5022, -4061):
        fake.arm(FaultKind.REJECT, count=1, code=code, symbol="BTCUSDT")
        with pytest.raises(ccxt.ExchangeError) as rejected:
            exchange.create_order(BTC, "market", "buy", 0.01)
        assert code_of(rejected.value) == code
    fake.arm(FaultKind.PARTIAL_FILLS, count=1, chunks=3, delay_s=0.05)
    order = exchange.create_order(BTC, "market", "buy", 0.03, params={"newOrderRespType": "RESULT"})
    assert order["info"]["status"] == "PARTIALLY_FILLED" and order["filled"] == 0.01
    fake.wait_until(lambda v: len(v.engine.accounts[creds.api_key].trades) == 3, 5)
    assert exchange.fetch_order(order["id"], BTC)["filled"] == 0.03
    assert [t["amount"] for t in exchange.fetch_my_trades(BTC)] == [0.01, 0.01, 0.01]


def test_fill_chunks_setting(creds: Creds) -> None:
    with BinanceFake(VenueConfig(**FAST, fill_chunks=4, chunk_slippage_ticks=1),
                     keys={creds.api_key: creds.secret}) as fake:
        client = make_binanceusdm(fake.rest_url, creds.api_key, creds.secret, enableRateLimit=False)
        fake.set_price("BTCUSDT", "60000.0")
        order = client.create_order(BTC, "market", "buy", 0.01, params={"newOrderRespType": "RESULT"})
        trades = client.fetch_my_trades(BTC)
        assert [t["price"] for t in trades] == [60000.1, 60000.2, 60000.3, 60000.4]
        assert sum(Decimal(str(t["amount"])) for t in trades) == Decimal("0.01")
        assert order["status"] == "closed"


def test_admin_http(fake: BinanceFake, creds: Creds) -> None:
    def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{fake.rest_url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    armed = call("POST", "/_fake/faults", {"kind": "reject", "count": 2, "code": -2022})
    assert armed["kind"] == "reject" and armed["count"] == 2
    assert [f["id"] for f in call("GET", "/_fake/faults")] == [armed["id"]]
    assert call("DELETE", f"/_fake/faults/{armed['id']}") == {"removed": 1}
    top = call("POST", "/_fake/price", {"symbol": "BTCUSDT", "bid": "61000.0"})
    assert top["bidPrice"] == "61000.00"
    state = call("GET", "/_fake/state")
    assert state["books"]["BTCUSDT"]["bidPrice"] == "61000.00"
    other = new_creds()
    call("POST", "/_fake/keys", {"api_key": other.api_key, "secret": other.secret})
    call("POST", f"/_fake/keys/{other.api_key}/permissions", {"enable_futures": False})
    client = make_binanceusdm(fake.rest_url, other.api_key, other.secret, enableRateLimit=False)
    assert client.sapiGetAccountApiRestrictions()["enableFutures"] is False
    assert call("GET", "/_fake/requests?limit=1")[0]["path"] == "/sapi/v1/account/apiRestrictions"
    assert call("POST", "/_fake/ws/drop", {"scope": "all"}) == {"dropped": 0}
    mine = make_binanceusdm(fake.rest_url, creds.api_key, creds.secret, enableRateLimit=False)
    listen_key = mine.fapiPrivatePostListenKey()["listenKey"]
    assert call("POST", "/_fake/listen_keys/expire", {"api_key": creds.api_key}) == {"expired": [listen_key]}
    assert call("POST", "/_fake/tick", {}) == {}
    assert call("POST", "/_fake/walk/resume", {"symbol": "BTCUSDT"}) == {}
    with pytest.raises(urllib.error.HTTPError) as bad:
        call("POST", "/_fake/faults", {"kind": "no_such_fault"})
    assert bad.value.code == 400
