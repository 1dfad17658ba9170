"""Exchange filters (tick, lot, minimum notional) from exchangeInfo, enforced before an order is sent.

Binance refuses a price off the tick (-4014), a quantity off the step (-4023), more decimals
than the symbol's precision (-1111) and a notional under MIN_NOTIONAL (-4164, unless
reduce-only). We round the price to the tick (a post-only order away from the touch, so it
cannot cross by rounding), floor the quantity to the step, print both with the symbol's
precision, and refuse locally what the venue would refuse. Decimal throughout: a float
printed as "0.30000000000000004" is a -1111.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.vocabulary import OrderSide, OrderType
from exchange.adapter import Instrument
from exchange.errors import OrderRejected


class SymbolRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    status: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    price_precision: int
    quantity_precision: int

    @property
    def trading(self) -> bool:
        return self.status == "TRADING"

    def instrument(self) -> Instrument:
        return Instrument(symbol=self.symbol, tick_size=float(self.tick_size), lot_size=float(self.step_size),
                          min_notional=float(self.min_notional))

    def price(self, price: float, side: OrderSide, post_only: bool) -> Decimal:
        """The price on the tick. A post-only BUY rounds down and a SELL up (never across the touch)."""
        rounding = (ROUND_FLOOR if side == "BUY" else ROUND_CEILING) if post_only else ROUND_HALF_EVEN
        ticks = (Decimal(repr(price)) / self.tick_size).to_integral_value(rounding)
        return _quantize(ticks * self.tick_size, self.price_precision)

    def qty(self, qty: float, order_type: OrderType) -> Decimal:
        """The quantity floored to the step (a fraction of a step is never sent up)."""
        step = self.market_step_size if order_type == "MARKET" else self.step_size
        steps = (Decimal(repr(qty)) / step).to_integral_value(ROUND_DOWN)
        return _quantize(steps * step, self.quantity_precision)

    def refuse(self, qty: Decimal, price: Decimal | None, order_type: OrderType, reduce_only: bool,
               reference: float | None) -> OrderRejected | None:
        """What the venue would refuse, or None. `reference` prices a MARKET order's notional (the
        touch it will take); without one the venue decides."""
        low, high = (self.market_min_qty, self.market_max_qty) if order_type == "MARKET" else (self.min_qty,
                                                                                              self.max_qty)
        if qty <= 0 or qty < low:
            return OrderRejected("qty_below_lot", f"{self.symbol}: qty {qty} below the minimum {low} (step "
                                                  f"{self.step_size})")
        if qty > high:
            return OrderRejected("qty_above_max", f"{self.symbol}: qty {qty} above the maximum {high}")
        if price is not None and not (self.min_price <= price <= self.max_price):
            return OrderRejected("price_out_of_range", f"{self.symbol}: price {price} outside "
                                                       f"[{self.min_price}, {self.max_price}]")
        priced = price if price is not None else (Decimal(repr(reference)) if reference else None)
        if not reduce_only and priced is not None and qty * priced < self.min_notional:
            return OrderRejected("min_notional", f"{self.symbol}: notional {qty * priced:.2f} below the minimum "
                                                 f"{self.min_notional} (reduce-only orders are exempt)")
        return None


def _quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


def fmt(value: Decimal) -> str:
    """A Decimal as Binance takes it: plain notation, never an exponent."""
    return format(value, "f")


def parse_exchange_info(body: dict[str, Any]) -> dict[str, SymbolRules]:
    """Every USDⓈ-M perpetual's rules from GET /fapi/v1/exchangeInfo."""
    rules: dict[str, SymbolRules] = {}
    for row in body.get("symbols", []):
        filters = {f.get("filterType"): f for f in row.get("filters", [])}
        price_f, lot_f = filters.get("PRICE_FILTER"), filters.get("LOT_SIZE")
        if price_f is None or lot_f is None:
            continue  # not an orderable symbol
        market_f = filters.get("MARKET_LOT_SIZE", lot_f)
        notional = filters.get("MIN_NOTIONAL", {}).get("notional", "0")
        tick, step = Decimal(price_f["tickSize"]), Decimal(lot_f["stepSize"])
        market_step = Decimal(market_f.get("stepSize", lot_f["stepSize"]))
        rules[row["symbol"]] = SymbolRules(
            symbol=row["symbol"], status=row.get("status", "TRADING"),
            tick_size=tick, min_price=Decimal(price_f.get("minPrice", "0")),
            max_price=Decimal(price_f.get("maxPrice", "0")) or Decimal("1e12"),
            step_size=step, min_qty=Decimal(lot_f.get("minQty", "0")), max_qty=Decimal(lot_f.get("maxQty", "1e12")),
            market_step_size=market_step if market_step > 0 else step,
            market_min_qty=Decimal(market_f.get("minQty", "0")), market_max_qty=Decimal(market_f.get("maxQty", "1e12")),
            min_notional=Decimal(notional),
            price_precision=int(row.get("pricePrecision", _places(tick))),
            quantity_precision=int(row.get("quantityPrecision", _places(step))),
        )
    return rules


def weight_limit(body: dict[str, Any]) -> int | None:
    """The REQUEST_WEIGHT per minute from exchangeInfo `rateLimits`."""
    for limit in body.get("rateLimits", []):
        if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
            return int(limit["limit"]) // max(1, int(limit.get("intervalNum", 1)))
    return None


def _places(step: Decimal) -> int:
    return max(0, -int(step.normalize().as_tuple().exponent))
