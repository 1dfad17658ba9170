"""Market data over REST: top of book with the mark (bookTicker + premiumIndex) and closed bars (klines)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exchange.adapter import Bar, BookTop
from exchange.binance_usdm.payloads import bar_from_kline_row, book_top, num
from exchange.binance_usdm.rest import BinanceRest
from exchange.errors import ExchangeUnavailable

MAX_KLINES = 1500  # Binance's limit per request
PER_SYMBOL_UP_TO = 3  # more symbols than this: one all-symbols request each (weight 5 + 10) beats 3 per symbol


def fetch_tops(rest: BinanceRest, symbols: Iterable[str]) -> dict[str, BookTop]:
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return {}
    if len(wanted) <= PER_SYMBOL_UP_TO:
        books = [rest.request("fapiPublicGetTickerBookTicker", {"symbol": s}) for s in wanted]
        marks = [rest.request("fapiPublicGetPremiumIndex", {"symbol": s}) for s in wanted]
    else:
        books = rest.request("fapiPublicGetTickerBookTicker")
        marks = rest.request("fapiPublicGetPremiumIndex")
    mark_of = {m["symbol"]: num(m.get("markPrice")) for m in marks}
    tops: dict[str, BookTop] = {}
    for row in books:
        symbol = row["symbol"]
        if symbol not in wanted:
            continue
        top = book_top(symbol, row["bidPrice"], row["bidQty"], row["askPrice"], row["askQty"],
                       mark_of.get(symbol, 0.0), row.get("time") or 0)
        if top is None:
            raise ExchangeUnavailable("no_book", f"{symbol}: the venue shows no two-sided book with a mark")
        tops[symbol] = top
    return tops


def fetch_closed_bars(rest: BinanceRest, symbol: str, interval: str, limit: int) -> list[Bar]:
    """The last `limit` closed bars, oldest first (the bar still forming is left out)."""
    rows: list[Any] = rest.request("fapiPublicGetKlines", {"symbol": symbol, "interval": interval,
                                                           "limit": max(1, min(limit + 1, MAX_KLINES))})
    now_ms = rest.clock.now_ms()
    closed = [r for r in rows if int(r[6]) < now_ms]  # closeTime passed
    return [bar_from_kline_row(r) for r in closed[-limit:]] if limit > 0 else []
