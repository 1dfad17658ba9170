"""`BinanceUsdmAdapter`: the exchange adapter interface on Binance USDⓈ-M futures.

Requests go over REST through ccxt (rest.py, orders.py); streams over websockets on a
background thread (stream_thread.py). Built with:

    adapter = BinanceUsdmAdapter(BinanceSettings(network="testnet"), ["BTCUSDT"],
                                 ApiCredentials.from_env())         # or .from_key_file(path); None: market data only
    report = adapter.check_account(leverage=5, margin_type="CROSSED")   # AccountNotReady names what to fix
    adapter.attach(sink)      # streams start; the sink is called from the stream thread
    ...
    adapter.close()

Thread model: request methods may be called from any thread (each REST client is locked);
`attach` starts one stream thread that calls the sink, one event at a time, in order. The
sink runs on that thread: a caller whose sink touches shared state takes its own lock there
(and must not hold that lock while calling `close()`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from exchange.adapter import (
    Balance,
    Bar,
    BookTop,
    ExchangeAdapter,
    ExchangeFill,
    ExchangeModel,
    ExchangePosition,
    Instrument,
    Order,
    OrderRequest,
)
from exchange.binance_usdm.account_state import AccountState
from exchange.binance_usdm.checks import AccountCheck, AccountReport
from exchange.binance_usdm.config import BinanceSettings, MarginType
from exchange.binance_usdm.credentials import ApiCredentials
from exchange.binance_usdm.errors import AccountNotReady
from exchange.binance_usdm.filters import SymbolRules, parse_exchange_info, weight_limit
from exchange.binance_usdm.history import History
from exchange.binance_usdm.market_data import fetch_closed_bars, fetch_tops
from exchange.binance_usdm.market_stream import MarketStream
from exchange.binance_usdm.memory import OrderMemory, TradeLedger
from exchange.binance_usdm.orders import OrderDesk
from exchange.binance_usdm.payloads import balance_from_account, fill_order, num, order_from_rest, position_from_risk
from exchange.binance_usdm.ratelimit import RateLimiter, RateLimitStatus
from exchange.binance_usdm.rest import BinanceRest, ServerClock
from exchange.binance_usdm.stream_thread import SinkPusher, StreamThread
from exchange.binance_usdm.user_stream import UserStream
from exchange.errors import BadRequest
from exchange.streams import BarClosed, BookTicked, ExchangeSnapshot, StreamSink

log = logging.getLogger(__name__)


class StreamStatus(ExchangeModel):
    """How the streams are doing, for metrics and the dashboard."""

    running: bool
    market_connected: bool = False
    market_connects: int = 0
    market_silences: int = 0
    user_stream: bool = Field(default=False, description="False without API keys (market data only).")
    user_connected: bool = False
    user_connects: int = 0
    user_resyncs: int = 0
    user_silences: int = 0
    listen_key_expiries: int = 0
    keepalive_failures: int = 0
    recovered_fills: int = 0
    last_user_sync: datetime | None = None
    last_user_reconnect_reason: str = ""
    market_events: int = 0
    account_events: int = 0
    sink_errors: int = 0


class BinanceUsdmAdapter(ExchangeAdapter):
    def __init__(self, settings: BinanceSettings, symbols: Sequence[str],
                 credentials: ApiCredentials | None = None) -> None:
        if not symbols:
            raise ValueError("at least one symbol")
        self.settings = settings
        self.symbols = list(dict.fromkeys(symbols))
        self.endpoints = settings.endpoints()
        self.limiter = RateLimiter()
        self.clock = ServerClock()
        self._credentials = credentials
        self._rest = BinanceRest(self.endpoints, credentials, settings, self.limiter, self.clock)
        self._memory = OrderMemory()
        self._rules: dict[str, SymbolRules] | None = None
        self._rules_lock = threading.Lock()
        self._leverage: dict[str, float] = {}
        self._account_checked = False
        self._tops: dict[str, BookTop] = {}  # the market stream's newest, for pricing MARKET orders' notional
        self._desk = OrderDesk(
            self._rest, self._memory, self._rules_for, self._reference_price,
            recv_window_ms=settings.recv_window_ms, verify_new_ids=settings.verify_new_ids,
            lookup_attempts=settings.lookup_attempts, lookup_backoff_s=settings.lookup_backoff_s,
            fills_settle_attempts=settings.fills_settle_attempts)
        self._history = History(self._rest, self._memory)
        self._pusher = SinkPusher()
        self._streams: StreamThread | None = None
        self._market: MarketStream | None = None
        self._user: UserStream | None = None
        self._attach_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BinanceUsdmAdapter({self.settings.network}, {self.endpoints.rest}, {self.symbols})"

    # --- start-up -------------------------------------------------------------------------------

    def check_account(self, symbols: Sequence[str] | None = None, leverage: int | Mapping[str, int] | None = None,
                      margin_type: MarginType | None = "CROSSED", *, fix: bool = True,
                      raise_on_problem: bool = True) -> AccountReport:
        """Verify (and with `fix`, set) what trading needs: server time offset, filters, the key's futures
        permission, one-way mode, margin type and leverage per symbol. Raises `AccountNotReady` naming
        every problem and its fix (or returns them in the report with raise_on_problem=False). Until it
        has passed, place_order refuses (with `require_account_check`)."""
        self._require_keys()
        check = AccountCheck(self._rest, list(symbols or self.symbols), leverage, margin_type, fix)
        report = check.run()
        self._set_rules(check.rules, check.weight_limit)
        self._leverage.update({s: float(v) for s, v in report.leverage.items()})
        for change in report.changed:
            log.info("account set up: %s", change)
        log.info("account check: offset %.0f ms, %d instruments, %d problem(s)", report.time_offset_ms,
                 len(report.instruments), len(report.problems))
        self._account_checked = report.ok
        if not report.ok and raise_on_problem:
            raise AccountNotReady(report.problems)
        return report

    # --- the interface: market data ---------------------------------------------------------------

    def instruments(self) -> dict[str, Instrument]:
        rules = self._load_rules()
        return {s: rules[s].instrument() for s in self.symbols if s in rules}

    def fetch_tops(self, symbols: Iterable[str]) -> dict[str, BookTop]:
        wanted = list(symbols)
        for symbol in wanted:
            self._rules_for(symbol)
        return fetch_tops(self._rest, wanted)

    def fetch_bars(self, symbol: str, limit: int) -> list[Bar]:
        self._rules_for(symbol)
        return fetch_closed_bars(self._rest, symbol, self.settings.bar_interval, limit)

    # --- the interface: account -------------------------------------------------------------------

    def fetch_balance(self) -> Balance:
        self._require_keys()
        return balance_from_account(self._rest.request("fapiPrivateV3GetAccount"))

    def fetch_positions(self) -> list[ExchangePosition]:
        self._require_keys()
        rows = [r for r in self._rest.request("fapiPrivateV3GetPositionRisk")
                if r.get("positionSide", "BOTH") == "BOTH" and num(r.get("positionAmt"))]
        if any(r["symbol"] not in self._leverage for r in rows):
            self._read_leverage()
        positions = [position_from_risk(r, self._leverage.get(r["symbol"], 20.0)) for r in rows]
        return sorted((p for p in positions if p is not None), key=lambda p: p.symbol)

    def snapshot(self) -> ExchangeSnapshot:
        self._require_keys()
        open_orders: list[Order] = []
        for symbol in self.symbols:
            for row in self._rest.request("fapiPrivateGetOpenOrders", {"symbol": symbol}):
                order = order_from_rest(row)
                self._memory.remember(order)
                open_orders.append(order)
        return ExchangeSnapshot(
            tops=self.fetch_tops(self.symbols), positions=self.fetch_positions(),
            open_orders=sorted(open_orders, key=lambda o: (o.created_at, o.order_id)), balance=self.fetch_balance())

    # --- the interface: orders --------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> Order:
        self._require_keys()
        if self.settings.require_account_check and not self._account_checked:
            raise BadRequest("account_not_checked", "check_account() has not passed: no order is sent before the "
                                                    "start-up check (one-way mode, margin, leverage, filters)")
        return self._desk.place(request)

    def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        self._require_keys()
        return self._desk.cancel(symbol, client_order_id)

    def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        self._require_keys()
        return self._desk.fetch(symbol, client_order_id)

    def fetch_orders(self, symbol: str, client_order_id_prefix: str = "", open_only: bool = False) -> list[Order]:
        self._require_keys()
        return self._desk.fetch_orders(symbol, client_order_id_prefix, open_only)

    def fetch_fills(self, since: datetime | None = None, symbol: str | None = None,
                    limit: int = 1000) -> list[ExchangeFill]:
        self._require_keys()
        symbols = [symbol] if symbol is not None else self.symbols
        for s in symbols:
            self._rules_for(s)
        start_ms = int(since.timestamp() * 1000) if since is not None else None
        fills: list[ExchangeFill] = []
        for s in symbols:
            rows = self._history.trades(s, start_ms=start_ms, max_rows=limit)
            if any(self._memory.by_order_id(s, str(r["orderId"])) is None for r in rows):
                self._history.all_orders(s)  # one read names most orders (userTrades rows carry no client id)
            fills.extend(self._history.fills(rows))
        if since is not None:
            since_utc = since if since.tzinfo else since.replace(tzinfo=UTC)
            fills = [f for f in fills if f.ts >= since_utc]
        return sorted(fills, key=fill_order)[:limit]

    # --- the interface: streams -------------------------------------------------------------------

    def attach(self, sink: StreamSink) -> None:
        """Push market and account events into `sink` from now on. The streams start on the first call
        (a background thread with its own event loop); the sink is called from that thread, one event at
        a time, in order. Without API keys only the market stream runs."""
        with self._attach_lock:
            self._pusher.sink = sink
            if self._streams is None:
                self._start_streams()

    def _start_streams(self) -> None:
        thread = StreamThread()
        stream_rest = BinanceRest(self.endpoints, self._credentials, self.settings, self.limiter, self.clock)
        account = AccountState(self.symbols)
        account.leverage.update(self._leverage)

        async def closed_bars(symbol: str, limit: int) -> list[Bar]:
            return await thread.blocking(
                lambda: fetch_closed_bars(stream_rest, symbol, self.settings.bar_interval, limit))

        def on_market(event: BookTicked | BarClosed) -> None:
            if isinstance(event, BookTicked):
                self._tops[event.top.symbol] = event.top
            self._pusher.market(event)

        self._market = MarketStream(self.settings, self.endpoints.ws, self.symbols, on_market, closed_bars,
                                    account.set_mark)
        thread.add("market", self._market.run)
        if self._credentials is not None:
            since_ms = self.clock.now_ms() - int(self.settings.first_recovery_lookback_s * 1000)
            self._user = UserStream(self.settings, self.endpoints.ws, self.symbols, stream_rest, thread.blocking,
                                    self._pusher.account, account, self._memory, TradeLedger(), since_ms)
            thread.add("user", self._user.run)
        self._streams = thread
        thread.start()

    def wait_streams(self, timeout: float = 10.0) -> bool:
        """Block until the market stream is up and the user stream has done its first resync."""
        waits = [s for s in (self._market.ready if self._market else None,
                             self._user.synced if self._user else None) if s is not None]
        return all(event.wait(timeout) for event in waits) and bool(waits)

    @property
    def stream_status(self) -> StreamStatus:
        market, user, pusher = self._market, self._user, self._pusher
        return StreamStatus(
            running=self._streams is not None and self._streams.running,
            market_connected=bool(market and market.connected), market_connects=market.connects if market else 0,
            market_silences=market.silences if market else 0, user_stream=user is not None,
            user_connected=bool(user and user.connected), user_connects=user.connects if user else 0,
            user_resyncs=user.resyncs if user else 0, user_silences=user.silences if user else 0,
            listen_key_expiries=user.expiries if user else 0,
            keepalive_failures=user.keepalive_failures if user else 0,
            recovered_fills=user.recovered_fills if user else 0, last_user_sync=user.last_sync if user else None,
            last_user_reconnect_reason=user.last_reason if user else "", market_events=pusher.market_events,
            account_events=pusher.account_events, sink_errors=pusher.sink_errors)

    # --- venue state for the gateway --------------------------------------------------------------

    @property
    def rate_limit(self) -> RateLimitStatus:
        """Used weight, order counts, back-off and ban (alert while `banned`: no new orders go out)."""
        return self.limiter.status()

    @property
    def banned(self) -> bool:
        return self.limiter.banned

    @property
    def time_offset_ms(self) -> float:
        return self.clock.offset_ms

    def close(self) -> None:
        if self._streams is not None:
            self._streams.stop()
            self._streams = None

    # --- helpers ----------------------------------------------------------------------------------

    def _require_keys(self) -> None:
        if self._credentials is None:
            raise BadRequest("no_credentials", "this adapter has no API keys: market data only")

    def _set_rules(self, rules: dict[str, SymbolRules], limit: int | None) -> None:
        with self._rules_lock:
            self._rules = rules
        if limit:
            self.limiter.set_weight_limit(limit)

    def _load_rules(self) -> dict[str, SymbolRules]:
        rules = self._rules
        if rules is None:
            info: Any = self._rest.request("fapiPublicGetExchangeInfo")
            self._set_rules(parse_exchange_info(info), weight_limit(info))
            rules = self._rules
            assert rules is not None
        return rules

    def _rules_for(self, symbol: str) -> SymbolRules:
        rules = self._load_rules().get(symbol)
        if rules is None:
            raise BadRequest("unknown_symbol", f"{symbol} is not listed on this venue")
        return rules

    def _reference_price(self, symbol: str, side: str) -> float | None:
        top = self._tops.get(symbol)
        if top is None:
            return None
        return top.ask if side == "BUY" else top.bid

    def _read_leverage(self) -> None:
        for row in self._rest.request("fapiPrivateGetSymbolConfig"):
            leverage = num(row.get("leverage"))
            if leverage > 0:
                self._leverage[row["symbol"]] = leverage
