"""The user-data stream, read with a raw `websockets` client (as the live adapter will)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import ccxt
import pytest
import websockets

from tests.venue.binance import BinanceFake, FaultKind, VenueConfig
from tests.venue.binance.ccxt_client import make_binanceusdm
from tests.venue.conftest import FAST, Creds

BTC = "BTC/USDT:USDT"
Json = dict[str, Any]
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
# ORDER_TRADE_UPDATE "o" fields: numbers that Binance sends as strings, and the other fields.
OTU_STRINGS = ("q", "p", "ap", "sp", "l", "z", "L", "b", "a", "rp")
OTU_FIELDS = {"s", "c", "S", "o", "f", "q", "p", "ap", "sp", "x", "X", "i", "l", "z", "L", "T", "t", "b", "a",
              "m", "R", "wt", "ot", "ps", "cp", "rp", "pP", "si", "ss", "V", "pm", "gtd"}


async def next_event(ws: Any, predicate: Callable[[Json], bool] = lambda e: True, timeout: float = 5.0) -> Json:
    """The next message matching `predicate` (others are skipped), within `timeout` seconds."""
    async def scan() -> Json:
        while True:
            event = json.loads(await ws.recv())
            if predicate(event):
                return event

    return await asyncio.wait_for(scan(), timeout)


def is_order(execution: str, client_id: str | None = None) -> Callable[[Json], bool]:
    def match(event: Json) -> bool:
        return (event.get("e") == "ORDER_TRADE_UPDATE" and event["o"]["x"] == execution
                and (client_id is None or event["o"]["c"] == client_id))

    return match


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def test_order_and_account_events_after_a_fill(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    fake.set_price("BTCUSDT", "60000.0")
    listen_key = exchange.fapiPrivatePostListenKey()["listenKey"]
    assert len(listen_key) == 64

    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/ws/{listen_key}") as ws:
            fake.wait_until(lambda v: len(v.hub.conns) == 1)
            await in_thread(exchange.create_order, BTC, "market", "buy", 0.01, None,
                            {"newClientOrderId": "ws-open"})
            new = await next_event(ws, is_order("NEW", "ws-open"))
            lite = await next_event(ws, lambda e: e["e"] == "TRADE_LITE")
            trade = await next_event(ws, is_order("TRADE", "ws-open"))
            account = await next_event(ws, lambda e: e["e"] == "ACCOUNT_UPDATE")

            for event in (new, trade):
                body = event["o"]
                assert set(body) >= OTU_FIELDS, OTU_FIELDS - set(body)
                assert all(isinstance(body[k], str) and NUMBER.match(body[k]) for k in OTU_STRINGS)
                assert isinstance(event["E"], int) and isinstance(body["i"], int) and isinstance(body["t"], int)
                assert body["s"] == "BTCUSDT" and body["S"] == "BUY" and body["o"] == "MARKET" and body["ps"] == "BOTH"
            assert "n" not in new["o"] and "N" not in new["o"]
            assert new["o"]["X"] == "NEW" and new["o"]["z"] == "0.000"
            body = trade["o"]
            assert body["X"] == "FILLED" and body["l"] == "0.010" and body["z"] == "0.010" and body["L"] == "60000.10"
            assert body["N"] == "USDT" and body["n"] == "0.30000050"  # 0.01 x 60000.1 x 0.0005
            assert body["m"] is False and body["rp"] == "0.00000000"
            assert lite["t"] == body["t"] and lite["L"] == "60000.10" and lite["l"] == "0.010"
            update = account["a"]
            assert update["m"] == "ORDER"
            assert update["B"] == [{"a": "USDT", "wb": "9999.69999950", "cw": "9999.69999950", "bc": "0.00000000"}]
            (position,) = update["P"]
            assert position["s"] == "BTCUSDT" and position["pa"] == "0.010" and position["ps"] == "BOTH"
            assert position["ep"] == "60000.1000000" and position["mt"] == "cross" and position["ma"] == "USDT"

            fake.set_price("BTCUSDT", "60200.0")
            await in_thread(exchange.create_order, BTC, "market", "sell", 0.01, None,
                            {"reduceOnly": True, "newClientOrderId": "ws-close"})
            closing = await next_event(ws, is_order("TRADE", "ws-close"))
            assert closing["o"]["rp"] == "1.99900000"  # (60200.0 - 60000.1) * 0.01 and closing["o"]["R"] is True
            flat = await next_event(ws, lambda e: e["e"] == "ACCOUNT_UPDATE")
            assert flat["a"]["P"][0]["pa"] == "0.000" and flat["a"]["P"][0]["cr"] == "1.99900000"

            await in_thread(exchange.set_leverage, 7, BTC)
            config = await next_event(ws, lambda e: e["e"] == "ACCOUNT_CONFIG_UPDATE")
            assert config["ac"] == {"s": "BTCUSDT", "l": 7}

    asyncio.run(run())


def test_resting_order_fill_and_cancel_events(exchange: Any, fake: BinanceFake) -> None:
    fake.set_price("BTCUSDT", "60000.0")
    listen_key = exchange.fapiPrivatePostListenKey()["listenKey"]

    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/stream?streams={listen_key}") as ws:
            fake.wait_until(lambda v: len(v.hub.conns) == 1)
            order = await in_thread(exchange.create_order, BTC, "limit", "buy", 0.01, 59900.0)
            wrapped = await next_event(ws, lambda e: e["data"].get("e") == "ORDER_TRADE_UPDATE")
            assert wrapped["stream"] == listen_key and wrapped["data"]["o"]["X"] == "NEW"
            fake.set_price("BTCUSDT", "59850.0")
            fill = await next_event(ws, lambda e: e["data"].get("e") == "ORDER_TRADE_UPDATE"
                                    and e["data"]["o"]["x"] == "TRADE")
            assert fill["data"]["o"]["m"] is True and fill["data"]["o"]["L"] == "59900.00"
            assert fill["data"]["o"]["i"] == int(order["id"])
            other = await in_thread(exchange.create_order, BTC, "limit", "buy", 0.01, 59000.0)
            await in_thread(exchange.cancel_order, other["id"], BTC)
            canceled = await next_event(ws, lambda e: e["data"].get("e") == "ORDER_TRADE_UPDATE"
                                        and e["data"]["o"]["x"] == "CANCELED")
            assert canceled["data"]["o"]["X"] == "CANCELED" and canceled["data"]["o"]["i"] == int(other["id"])

    asyncio.run(run())


@pytest.fixture
def short_lived(creds: Creds) -> Iterator[tuple[BinanceFake, Any]]:
    """A venue whose listenKeys live one second."""
    with BinanceFake(VenueConfig(**FAST, listen_key_ttl_s=1.0), keys={creds.api_key: creds.secret}) as fake:
        client = make_binanceusdm(fake.rest_url, creds.api_key, creds.secret, enableRateLimit=False, timeout=5000)
        client.load_markets()
        yield fake, client


def test_listen_key_expires_and_keepalive_extends(short_lived: tuple[BinanceFake, Any], creds: Creds) -> None:
    fake, exchange = short_lived
    listen_key = exchange.fapiPrivatePostListenKey()["listenKey"]
    assert exchange.fapiPrivatePostListenKey()["listenKey"] == listen_key  # one active key per account

    def expires_at() -> float:
        return fake.call(lambda v: v.listen_keys.by_key[listen_key].expires_at)

    before = expires_at()
    assert exchange.fapiPrivatePutListenKey()["listenKey"] == listen_key
    assert expires_at() > before

    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/ws/{listen_key}") as ws:
            expired = await next_event(ws, lambda e: e.get("e") == "listenKeyExpired", timeout=5)
            assert expired["listenKey"] == listen_key and isinstance(expired["E"], str)
            with pytest.raises(ccxt.AuthenticationError) as gone:
                await in_thread(exchange.fapiPrivatePutListenKey)
            assert '"code":-1125' in str(gone.value)
            # The key is silent now: a fill is not sent (the connection stays open).
            await in_thread(exchange.create_order, BTC, "market", "buy", 0.01)
            fake.wait_until(lambda v: len(v.hub.dropped_user_events) >= 4)
            assert not ws.close_code
            fresh = await in_thread(exchange.fapiPrivatePostListenKey)
            assert fresh["listenKey"] != listen_key

    asyncio.run(run())
    assert [e["e"] for e in fake.user_events(creds.api_key, dropped=True)][:2] == ["ORDER_TRADE_UPDATE", "TRADE_LITE"]


def test_expire_now_keepalive_failure_and_delete(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    listen_key = exchange.fapiPrivatePostListenKey()["listenKey"]

    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/ws/{listen_key}") as ws:
            fake.wait_until(lambda v: len(v.hub.conns) == 1)
            assert fake.expire_listen_keys(creds.api_key) == [listen_key]
            await next_event(ws, lambda e: e.get("e") == "listenKeyExpired")

    asyncio.run(run())
    second = exchange.fapiPrivatePostListenKey()["listenKey"]
    fake.arm(FaultKind.KEEPALIVE_FAIL, count=1)
    with pytest.raises(ccxt.AuthenticationError):
        exchange.fapiPrivatePutListenKey()
    assert fake.call(lambda v: v.listen_keys.by_key[second].expired)
    third = exchange.fapiPrivatePostListenKey()["listenKey"]
    exchange.fapiPrivateDeleteListenKey()
    assert fake.call(lambda v: v.listen_keys.by_key[third].expired)
    with pytest.raises(ccxt.AuthenticationError):
        exchange.fapiPrivatePutListenKey()


def test_silent_stream_loses_fills_that_rest_still_shows(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    listen_key = exchange.fapiPrivatePostListenKey()["listenKey"]

    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/ws/{listen_key}") as ws:
            fake.wait_until(lambda v: len(v.hub.conns) == 1)
            # A market fill makes four events (NEW, TRADE_LITE, TRADE, ACCOUNT_UPDATE): drop exactly those.
            fake.arm(FaultKind.USER_STREAM_SILENT, count=4)
            await in_thread(exchange.create_order, BTC, "market", "buy", 0.01, None, {"newClientOrderId": "quiet"})
            await in_thread(exchange.create_order, BTC, "market", "buy", 0.01, None, {"newClientOrderId": "heard"})
            first = await next_event(ws)
            assert first["e"] == "ORDER_TRADE_UPDATE" and first["o"]["c"] == "heard"

    asyncio.run(run())
    trades = exchange.fetch_my_trades(BTC)
    assert len(trades) == 2
    assert len(fake.user_events(creds.api_key, dropped=True)) == 4


def test_dropped_and_refused_connections(exchange: Any, fake: BinanceFake, creds: Creds) -> None:
    listen_key = exchange.fapiPrivatePostListenKey()["listenKey"]

    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/ws/{listen_key}") as ws:
            fake.wait_until(lambda v: len(v.hub.conns) == 1)
            assert fake.drop_connections("user") == 1
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        fake.arm(FaultKind.WS_REFUSE, seconds=30, scope="user")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"{fake.ws_url}/ws/{listen_key}")
        assert refused.value.response.status_code == 503
        # While the stream is down a fill happens: only REST can tell.
        await in_thread(exchange.create_order, BTC, "market", "buy", 0.01)
        async with websockets.connect(f"{fake.ws_url}/ws/btcusdt@bookTicker") as market:
            await next_event(market, lambda e: e["e"] == "bookTicker")
        fake.clear(kind=FaultKind.WS_REFUSE)
        async with websockets.connect(f"{fake.ws_url}/ws/{listen_key}"):
            fake.wait_until(lambda v: any(c.listen_keys for c in v.hub.conns))

    asyncio.run(run())
    assert len(exchange.fetch_my_trades(BTC)) == 1
    assert len(fake.user_events(creds.api_key, dropped=False)) == 4  # sent, but nobody was connected
