"""Market streams: raw /ws/<stream>, combined /stream?streams=..., live SUBSCRIBE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from tests.venue.binance import BinanceFake, VenueConfig
from tests.venue.conftest import FAST

Json = dict[str, Any]


@pytest.fixture
def venue_config() -> VenueConfig:
    # "1m" bars last half a second here, so a closing update (x=true) comes quickly.
    return VenueConfig(**FAST, kline_seconds={"1m": 0.5})


async def first(ws: Any, predicate: Callable[[Json], bool], timeout: float = 5.0) -> Json:
    async def scan() -> Json:
        while True:
            message = json.loads(await ws.recv())
            if predicate(message):
                return message

    return await asyncio.wait_for(scan(), timeout)


def test_combined_streams(fake: BinanceFake) -> None:
    streams = "btcusdt@bookTicker/btcusdt@markPrice@1s/ethusdt@markPrice/btcusdt@kline_1m"

    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/stream?streams={streams}") as ws:
            book = await first(ws, lambda m: m["stream"] == "btcusdt@bookTicker")
            data = book["data"]
            assert data["e"] == "bookTicker" and data["s"] == "BTCUSDT"
            assert {"u", "E", "T", "b", "B", "a", "A"} <= set(data)
            assert all(isinstance(data[k], str) for k in ("b", "B", "a", "A"))
            assert float(data["a"]) > float(data["b"])

            fast = await first(ws, lambda m: m["stream"] == "btcusdt@markPrice@1s")
            assert fast["data"]["e"] == "markPriceUpdate" and {"p", "i", "P", "r", "T"} <= set(fast["data"])
            slow = await first(ws, lambda m: m["stream"] == "ethusdt@markPrice")
            assert slow["data"]["s"] == "ETHUSDT"

            closing = await first(ws, lambda m: m["stream"] == "btcusdt@kline_1m" and m["data"]["k"]["x"])
            bar = closing["data"]["k"]
            assert bar["i"] == "1m" and bar["T"] - bar["t"] == 499
            assert all(isinstance(bar[k], str) for k in ("o", "h", "l", "c", "v", "q"))
            following = await first(ws, lambda m: m["stream"] == "btcusdt@kline_1m")
            assert following["data"]["k"]["t"] == bar["T"] + 1 and following["data"]["k"]["o"] == bar["c"]

    asyncio.run(run())


def test_raw_stream_and_subscribe(fake: BinanceFake) -> None:
    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/ws/BTCUSDT@bookTicker") as ws:
            event = await first(ws, lambda m: True)
            assert event["e"] == "bookTicker" and "stream" not in event
        async with websockets.connect(f"{fake.ws_url}/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@bookTicker"], "id": 1}))
            assert await first(ws, lambda m: m.get("id") == 1) == {"result": None, "id": 1}
            event = await first(ws, lambda m: m.get("e") == "bookTicker")
            assert event["s"] == "ETHUSDT"
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            assert (await first(ws, lambda m: m.get("id") == 2))["result"] == ["ethusdt@bookTicker"]
            await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["ethusdt@bookTicker"], "id": 3}))
            await first(ws, lambda m: m.get("id") == 3)
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
            assert (await first(ws, lambda m: m.get("id") == 4))["result"] == []

    asyncio.run(run())


def test_set_price_is_streamed_and_drop_closes_market_connections(fake: BinanceFake) -> None:
    async def run() -> None:
        async with websockets.connect(f"{fake.ws_url}/market/stream?streams=btcusdt@bookTicker") as ws:
            fake.wait_until(lambda v: v.hub.subscribed("btcusdt@bookTicker"))
            fake.set_price("BTCUSDT", "65000.0")
            moved = await first(ws, lambda m: m["data"]["b"] == "65000.00")
            assert moved["data"]["a"] == "65000.10"
            assert fake.drop_connections("market") == 1
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)

    asyncio.run(run())
