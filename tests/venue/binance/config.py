"""Configuration of the fake venue: symbols, API keys, fees, timers (pydantic models)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_LISTEN_KEY_TTL_S = 3600.0


class SymbolSpec(BaseModel):
    """One USDⓈ-M perpetual: its filters (as exchangeInfo publishes them) and its price walk."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    base_asset: str
    quote_asset: str = "USDT"
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    start_price: Decimal
    # Per-tick standard deviation of the mid price, in ticks.
    volatility_ticks: float = 3.0
    spread_ticks: int = 1
    # Quantity shown at the best bid/ask (a resting limit fills at most this much per tick).
    top_qty: Decimal = Decimal("5")
    max_leverage: int = 125
    # exchangeInfo pricePrecision/quantityPrecision (decimals accepted in a request, -1111 beyond);
    # None: the decimals of tick_size/step_size. Binance's BTCUSDT has pricePrecision 2 with tick 0.10.
    price_precision: int | None = None
    quantity_precision: int | None = None
    # Maintenance margin rate of the first leverage bracket.
    maint_margin_rate: Decimal = Decimal("0.004")

    @property
    def price_places(self) -> int:
        return self.price_precision if self.price_precision is not None else _places(self.tick_size)

    @property
    def qty_places(self) -> int:
        return self.quantity_precision if self.quantity_precision is not None else _places(self.step_size)


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def default_symbols() -> list[SymbolSpec]:
    """BTCUSDT and ETHUSDT with Binance's real filters (tick 0.10 / 0.01, step 0.001, notional 100 / 20)."""
    return [
        SymbolSpec(
            symbol="BTCUSDT",
            base_asset="BTC",
            tick_size=Decimal("0.10"),
            min_price=Decimal("261.10"),
            max_price=Decimal("809484"),
            step_size=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            max_qty=Decimal("1000"),
            market_min_qty=Decimal("0.001"),
            market_max_qty=Decimal("120"),
            min_notional=Decimal("100"),
            start_price=Decimal("60000.00"),
            top_qty=Decimal("2.500"),
            price_precision=2,
        ),
        SymbolSpec(
            symbol="ETHUSDT",
            base_asset="ETH",
            tick_size=Decimal("0.01"),
            min_price=Decimal("39.86"),
            max_price=Decimal("306177"),
            step_size=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            max_qty=Decimal("10000"),
            market_min_qty=Decimal("0.001"),
            market_max_qty=Decimal("2000"),
            min_notional=Decimal("20"),
            start_price=Decimal("3000.00"),
            top_qty=Decimal("40.000"),
            maint_margin_rate=Decimal("0.005"),
        ),
    ]


class KeySpec(BaseModel):
    """An API key the fake accepts. Keys sharing `account` trade one account (default: own account)."""

    api_key: str
    secret: str
    account: str | None = None
    enable_futures: bool = True
    enable_reading: bool = True

    @property
    def account_id(self) -> str:
        return self.account or self.api_key


class VenueConfig(BaseModel):
    """Everything the fake can be told at construction (also the CLI's --config JSON)."""

    symbols: list[SymbolSpec] = Field(default_factory=default_symbols)
    keys: list[KeySpec] = Field(default_factory=list)
    seed: int = 7
    # Price walk timer.
    tick_interval_s: float = 0.1
    # Fees (USDT, charged on notional) and the starting wallet.
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    starting_balance: Decimal = Decimal("10000")
    default_leverage: int = 20
    # MARKET orders (and the taker part of a crossing LIMIT) fill in this many trades.
    fill_chunks: int = 1
    # Each further chunk fills this many ticks worse than the previous one.
    chunk_slippage_ticks: int = 0
    # User-data stream listenKey validity, extended by PUT keepalive.
    listen_key_ttl_s: float = DEFAULT_LISTEN_KEY_TTL_S
    # Market stream cadences: <symbol>@markPrice (3 s on Binance) and <symbol>@markPrice@1s.
    mark_price_interval_s: float = 3.0
    mark_price_fast_interval_s: float = 1.0
    # A kline interval may be shortened for tests, e.g. {"1m": 1.0}: "1m" bars then last one second
    # (openTime/closeTime follow the shortened length). Binance's own lengths otherwise.
    kline_seconds: dict[str, float] = Field(default_factory=dict)
    # Websocket-level ping period of the server (Binance pings every 3 minutes).
    ws_ping_interval_s: float = 180.0
    # Rate limits (exchangeInfo rateLimits) and the automatic ban after repeated 429s.
    weight_limit_1m: int = 2400
    order_limit_1m: int = 1200
    order_limit_10s: int = 300
    bans_after_429s: int = 5
    ban_seconds: float = 120.0
    # TRADE_LITE events (Binance sends one per fill besides ORDER_TRADE_UPDATE).
    trade_lite: bool = True
    # Order of a fill's two user-data events: ORDER_TRADE_UPDATE then ACCOUNT_UPDATE unless this is
    # set (Binance guarantees ordering only within one event type, so an adapter must accept both).
    account_update_first: bool = False
    request_log_size: int = 5000

    @field_validator("fill_chunks")
    @classmethod
    def _chunks_positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("fill_chunks must be >= 1")
        return value

    def symbol_map(self) -> dict[str, SymbolSpec]:
        return {spec.symbol: spec for spec in self.symbols}
