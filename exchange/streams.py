"""The push half of the exchange interface: market data and account events as they happen.

A venue pushes two streams, and so does every adapter (docs/trading.md, "Exchange streams"):

- market: `BookTicked` (top of book and mark of one symbol) and `BarClosed`;
- account: `OrderChanged` (an order's status or filled quantity changed; its fills come as
  `TradeExecuted`), `TradeExecuted` (one fill, with the exchange trade id), `PositionChanged`
  (a symbol's position after a fill; None when flat) and `BalanceChanged`.

An adapter pushes them into a `StreamSink`. The exchange gateway process republishes them on
ZeroMQ with a gap-free sequence per stream and a heartbeat (exchange/stream_server.py); a
consumer (exchange/stream_client.py) detects a gap or silence and resyncs: it takes an
`ExchangeSnapshot` (the state at known sequences) and then applies only newer events, the
same Clone discipline as the hub's updates.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

from pydantic import Field, TypeAdapter

from domain.vocabulary import Symbol
from exchange.adapter import Balance, Bar, BookTop, ExchangeFill, ExchangeModel, ExchangePosition, Order

MARKET: Literal["market"] = "market"
ACCOUNT: Literal["account"] = "account"
StreamName = Literal["market", "account"]


class BookTicked(ExchangeModel):
    """A new top of book and mark for one symbol."""

    kind: Literal["book"] = "book"
    top: BookTop


class BarClosed(ExchangeModel):
    """A bar of `symbol` closed (its `ts` is the bar's open time)."""

    kind: Literal["bar"] = "bar"
    symbol: Symbol
    bar: Bar


class OrderChanged(ExchangeModel):
    """An order's status or filled quantity changed. `order.fills` is empty: fills are `TradeExecuted`."""

    kind: Literal["order"] = "order"
    order: Order


class TradeExecuted(ExchangeModel):
    """One fill (trade) of one of the account's orders."""

    kind: Literal["trade"] = "trade"
    fill: ExchangeFill


class PositionChanged(ExchangeModel):
    """The position of `symbol` after a change; None means flat."""

    kind: Literal["position"] = "position"
    symbol: Symbol
    position: ExchangePosition | None


class BalanceChanged(ExchangeModel):
    kind: Literal["balance"] = "balance"
    balance: Balance


MarketEvent = Annotated[BookTicked | BarClosed, Field(discriminator="kind")]
AccountEvent = Annotated[OrderChanged | TradeExecuted | PositionChanged | BalanceChanged, Field(discriminator="kind")]
MARKET_EVENT: TypeAdapter[MarketEvent] = TypeAdapter(MarketEvent)
ACCOUNT_EVENT: TypeAdapter[AccountEvent] = TypeAdapter(AccountEvent)


class StreamSink(Protocol):
    """Where an adapter pushes its events, in the order they happened."""

    def market(self, event: BookTicked | BarClosed) -> None: ...

    def account(self, event: OrderChanged | TradeExecuted | PositionChanged | BalanceChanged) -> None: ...


class NullSink:
    """Drops everything: an adapter nobody listens to."""

    def market(self, event: BookTicked | BarClosed) -> None:
        return None

    def account(self, event: OrderChanged | TradeExecuted | PositionChanged | BalanceChanged) -> None:
        return None


class ExchangeSnapshot(ExchangeModel):
    """Everything the streams keep current, read at once: a consumer's starting point."""

    tops: dict[str, BookTop] = Field(default_factory=dict)
    positions: list[ExchangePosition] = Field(default_factory=list)
    open_orders: list[Order] = Field(default_factory=list)
    balance: Balance


class StreamSnapshot(ExchangeModel):
    """An `ExchangeSnapshot` with the stream sequences it is valid at (the gateway's answer)."""

    epoch: str = Field(description="Changes when the gateway restarts: sequences start again.")
    market_seq: int = Field(ge=0)
    account_seq: int = Field(ge=0)
    state: ExchangeSnapshot
