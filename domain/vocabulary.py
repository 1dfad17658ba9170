"""The words of the domain, each defined once and imported everywhere that speaks of it.

Contracts are linear USDⓈ-M perpetuals: quantities in base units, prices and money in the
quote asset. A position has a direction (LONG or SHORT); an order has a side (BUY or SELL).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import StringConstraints

# Trading modes: SIM is the built-in paper exchange; DRY_RUN takes a venue's market data and
# fills on the paper engine; LIVE places orders on the venue.
Mode = Literal["SIM", "DRY_RUN", "LIVE"]
# Where orders go: the paper engine (SIM and DRY_RUN) or one of the venue's networks (LIVE).
Network = Literal["paper", "testnet", "demo", "mainnet"]
VenueNetwork = Literal["testnet", "demo", "mainnet"]
Direction = Literal["LONG", "SHORT"]
PositionSide = Literal["LONG", "SHORT", "FLAT"]  # a positions row, which may be flat
OrderSide = Literal["BUY", "SELL"]
OrderType = Literal["LIMIT", "MARKET"]
OrderStatus = Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED"]
OPEN_ORDER_STATUSES: Final[frozenset[str]] = frozenset({"NEW", "PARTIALLY_FILLED"})
TERMINAL_ORDER_STATUSES: Final[frozenset[str]] = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED"})
Liquidity = Literal["maker", "taker"]
ExitReason = Literal["TP", "SL", "TTL"]
IntentPurpose = Literal["entry", "exit_tp", "exit_sl", "exit_ttl", "exit_manual", "reconcile"]
DdState = Literal["NORMAL", "CAUTION", "DEFENSIVE"]
ReconcilePolicy = Literal["warn", "adopt_exchange", "halt"]  # what a store/venue mismatch does

QUOTE_ASSET: Final = "USDT"
SYMBOL_PATTERN: Final = r"^[A-Z0-9]{2,24}$"
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
# Binance allows up to 36 characters of [.A-Z:/a-z0-9_-] in a client order id.
CLIENT_ORDER_ID_PATTERN: Final = r"^[.A-Za-z0-9:/_-]{1,36}$"
ClientOrderId = Annotated[str, StringConstraints(pattern=CLIENT_ORDER_ID_PATTERN)]


def sign_of(direction: Direction) -> int:
    """+1 for LONG, -1 for SHORT: the factor PnL is multiplied by."""
    return 1 if direction == "LONG" else -1


def closing_side(direction: Direction) -> OrderSide:
    """The order side that reduces a position of `direction`."""
    return "SELL" if direction == "LONG" else "BUY"


def opening_side(direction: Direction) -> OrderSide:
    """The order side that opens or adds to a position of `direction`."""
    return "BUY" if direction == "LONG" else "SELL"


def direction_of(side: OrderSide) -> Direction:
    """The direction a fill of `side` moves a flat position to."""
    return "LONG" if side == "BUY" else "SHORT"
