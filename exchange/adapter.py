"""The exchange adapter interface and the models it speaks.

Everything the trading actors need from an exchange, and nothing more: top of book and mark
prices, recent bars, the account balance, positions, orders (placed by client order id, which
makes placing idempotent), and fills with the exchange trade id. A live adapter (ccxt,
Binance USDⓈ-M) implements `ExchangeAdapter`; the paper exchange implements it in SIM mode.

Contracts are linear: qty in base units, prices and PnL in the quote asset (USDT).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bus.messages.base import UtcTime, utc_now
from domain.vocabulary import (
    OPEN_ORDER_STATUSES,
    QUOTE_ASSET,
    ClientOrderId,
    Direction,
    Liquidity,
    OrderSide,
    OrderStatus,
    OrderType,
    Symbol,
)

if TYPE_CHECKING:
    from exchange.streams import ExchangeSnapshot, StreamSink

Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class ExchangeModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Instrument(ExchangeModel):
    symbol: Symbol
    tick_size: Positive
    lot_size: Positive
    min_notional: NonNegative = 5.0
    contract: Literal["linear"] = "linear"


class BookTop(ExchangeModel):
    """Best bid/ask with sizes, and the mark price PnL is computed at."""

    symbol: Symbol
    bid: Positive
    ask: Positive
    bid_qty: NonNegative
    ask_qty: NonNegative
    mark: Positive
    ts: UtcTime

    @model_validator(mode="after")
    def _not_crossed(self) -> BookTop:
        if self.ask <= self.bid:
            raise ValueError(f"{self.symbol}: crossed book bid={self.bid} ask={self.ask}")
        return self

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


class Bar(ExchangeModel):
    """One OHLC bar; `ts` is the bar's open time."""

    ts: UtcTime
    open: Positive
    high: Positive
    low: Positive
    close: Positive


class Balance(ExchangeModel):
    """The futures wallet in the quote asset. margin_balance = wallet_balance + unrealized_pnl."""

    asset: str = QUOTE_ASSET
    wallet_balance: float
    unrealized_pnl: float
    margin_balance: float
    position_margin: NonNegative
    order_margin: NonNegative
    available_balance: float
    fees_paid: NonNegative = 0.0
    ts: UtcTime = Field(default_factory=utc_now)


class ExchangePosition(ExchangeModel):
    """An open position (one-way mode: at most one per symbol). qty is the absolute size."""

    symbol: Symbol
    side: Direction
    qty: Positive
    entry_price: Positive
    mark_price: Positive
    unrealized_pnl: float
    realized_pnl: float = Field(default=0.0, description="Realized since this position opened (partial closes).")
    leverage: Positive
    margin: NonNegative
    opened_at: UtcTime | None = None
    updated_at: UtcTime


class OrderRequest(ExchangeModel):
    client_order_id: ClientOrderId
    symbol: Symbol
    side: OrderSide
    order_type: OrderType
    qty: Positive
    price: Positive | None = None
    post_only: bool = False
    reduce_only: bool = False

    @model_validator(mode="after")
    def _price_matches_type(self) -> OrderRequest:
        if self.order_type == "LIMIT" and self.price is None:
            raise ValueError("a LIMIT order needs a price")
        if self.order_type == "MARKET" and (self.price is not None or self.post_only):
            raise ValueError("a MARKET order takes no price and cannot be post-only")
        return self


class ExchangeFill(ExchangeModel):
    """One trade. `trade_id` is unique per exchange account: the de-duplication key for fills."""

    trade_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    client_order_id: ClientOrderId
    symbol: Symbol
    side: OrderSide
    qty: Positive
    price: Positive
    fee: NonNegative
    fee_asset: str = QUOTE_ASSET
    liquidity: Liquidity
    realized_pnl: float = Field(description="PnL realized by this fill's closing part, before fees.")
    reduce_only: bool = False
    ts: UtcTime


class Order(ExchangeModel):
    order_id: str = Field(min_length=1, max_length=64)
    client_order_id: ClientOrderId
    symbol: Symbol
    side: OrderSide
    order_type: OrderType
    status: OrderStatus
    qty: Positive
    price: Positive | None = None
    filled_qty: NonNegative = 0.0
    avg_price: NonNegative | None = None
    post_only: bool = False
    reduce_only: bool = False
    reason: str = ""
    created_at: UtcTime
    updated_at: UtcTime
    fills: list[ExchangeFill] = Field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES

    @property
    def remaining_qty(self) -> float:
        return max(0.0, self.qty - self.filled_qty)


class ExchangeAdapter(ABC):
    """What the trading actors need from an exchange, in two halves as a venue has them.

    Requests (the methods below) answer at once; every one may raise an
    `exchange.errors.ExchangeError` (`ExchangeUnavailable` means "no answer, state unknown").
    Streams are pushed: `attach(sink)` makes the adapter push market and account events into
    `sink` as they happen (exchange/streams.py); `snapshot()` reads what the streams keep
    current at once, the starting point a consumer applies the stream to.
    """

    def attach(self, sink: StreamSink) -> None:
        """Push market and account events into `sink` from now on. An adapter that is only a
        request client (the RPC client of a gateway) pushes nothing: its streams come from
        the gateway (exchange/stream_client.py)."""
        return None

    @abstractmethod
    def snapshot(self) -> ExchangeSnapshot:
        """Top of book of every listed symbol, open positions, open orders and the balance."""

    @abstractmethod
    def instruments(self) -> dict[str, Instrument]:
        """Tick size, lot size and minimum notional per tradable symbol."""

    @abstractmethod
    def fetch_tops(self, symbols: Iterable[str]) -> dict[str, BookTop]:
        """Top of book and mark price for each symbol."""

    @abstractmethod
    def fetch_bars(self, symbol: str, limit: int) -> list[Bar]:
        """The last `limit` closed bars, oldest first."""

    @abstractmethod
    def fetch_balance(self) -> Balance: ...

    @abstractmethod
    def fetch_positions(self) -> list[ExchangePosition]:
        """Open positions only (a flat symbol has no entry)."""

    @abstractmethod
    def place_order(self, request: OrderRequest) -> Order:
        """Place an order. Idempotent on `client_order_id`: placing an id that exists returns
        that order unchanged. Raises `OrderRejected` when refused (nothing placed)."""

    @abstractmethod
    def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        """Cancel if open; a terminal order is returned as it is. `OrderNotFound` if never placed."""

    @abstractmethod
    def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        """The order with all its fills. `OrderNotFound` if never placed."""

    @abstractmethod
    def fetch_orders(self, symbol: str, client_order_id_prefix: str = "", open_only: bool = False) -> list[Order]:
        """Orders of `symbol` whose client order id starts with the prefix, oldest first."""

    @abstractmethod
    def fetch_fills(
        self, since: datetime | None = None, symbol: str | None = None, limit: int = 1000
    ) -> list[ExchangeFill]:
        """Fills at or after `since`, oldest first, at most `limit`."""

    def close(self) -> None:
        """Release connections."""
