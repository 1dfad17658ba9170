"""A stateful Binance USDⓈ-M futures compatible server for tests (no test ever reaches Binance).

It speaks Binance's documented payloads (developers.binance.com, derivatives/usds-margined-futures):
field names, numbers as strings, errors as {"code": -XXXX, "msg": "..."} with Binance's HTTP statuses,
X-MBX-USED-WEIGHT-1M / X-MBX-ORDER-COUNT-10S / X-MBX-ORDER-COUNT-1M headers, HMAC-SHA256 signed
endpoints, the user-data stream and market streams. Where the docs are ambiguous it follows what
ccxt's binanceusdm parses.

Starting it
-----------
In the test process (its own thread and event loop, 127.0.0.1, port 0 = any free port)::

    fake = BinanceFake(VenueConfig(tick_interval_s=0.02), keys={api_key: secret}).start()
    fake.rest_url   # http://127.0.0.1:PORT      (REST: /fapi/..., /sapi/v1/account/apiRestrictions)
    fake.ws_url     # ws://127.0.0.1:PORT        (/ws/<listenKey>, /ws/<stream>, /stream?streams=a/b)
    fake.stop()     # or: with BinanceFake(...) as fake: ...

As its own process (for a supervisord group pointed at it; stop it by pid with SIGTERM)::

    python -m tests.venue.binance --port 0 --port-file PATH --keys-file PATH [--config VENUE.json]
        [--seed N] [--tick-interval S] [--listen-key-ttl S] [--fill-chunks N]

(from the repository root: `tests` is not an installed package). --keys-file is JSON
{"api_key": "secret"} or a list of KeySpec objects; the port file is written atomically once the
server listens, then one line "binance fake listening on http://127.0.0.1:PORT ..." is printed.
Keys are made by the test at run time; KeySpec.account lets several keys share one account,
KeySpec.enable_futures=False makes a key without futures permission.

Inspecting it: fake.state() (accounts: balance, positions, orders, trades; books, marks, listenKeys,
connections, faults), fake.orders(key), fake.trades(key), fake.positions(key), fake.balance(key),
fake.request_log(), fake.user_events(key[, dropped=True]), fake.wait_until(predicate(venue), timeout)
(woken by every state change: synchronise on it, not on sleeps), fake.set_price(symbol, bid) (moves
the book there and pauses the walk, so resting orders fill deterministically), fake.resume_walk().

Pointing ccxt's binanceusdm at it
---------------------------------
Replace the whole ``exchange.urls["api"]`` (ccxt_client.ccxt_urls(rest_url) does) with these keys::

    fapiPublic, fapiPrivate     -> {rest_url}/fapi/v1
    fapiPublicV2, fapiPrivateV2 -> {rest_url}/fapi/v2
    fapiPublicV3, fapiPrivateV3 -> {rest_url}/fapi/v3
    fapiData                    -> {rest_url}/futures/data
    sapi                        -> {rest_url}/sapi/v1      (only account/apiRestrictions is served)

With no other key left, a call to any other API section fails inside ccxt (NotSupported) rather
than reaching a real host. Options: ``{"fetchCurrencies": False}`` keeps load_markets() off the spot
wallet endpoint (binanceusdm's default fetchMarkets types ["linear"] already keep it off spot and
COIN-M exchangeInfo, so load_markets() makes exactly one request: GET /fapi/v1/exchangeInfo).
In tests also ``enableRateLimit: False`` (ccxt's own throttle sleeps 50 ms per weight unit, 1.5 s
for positionSide/dual). ccxt then uses: v3 account (fetch_balance), v3 positionRisk and v1
leverageBracket (fetch_positions), v1 order / openOrders / userTrades / ticker/24hr / depth /
premiumIndex / klines / commissionRate / leverage / marginType / positionSide/dual; listenKey
through the implicit fapiPrivatePost/Put/DeleteListenKey.

Binance code -> ccxt exception (observed, ccxt 4.5.90)
------------------------------------------------------
ccxt maps Binance codes per URL: its USDⓈ-M table is consulted only when the URL starts with
https://fapi.binance.com/ (or the demo/testnet hosts), so at the fake's URL only the generic table
applies and several codes raise a different class than against Binance itself. An adapter must
therefore classify by the Binance code in the body, never by ccxt class. Both columns are checked
by tests/venue/test_ccxt_errors.py (first: through the fake; second: ccxt's handle_errors given the
same response at https://fapi.binance.com/fapi/v1/order)::

    code   HTTP  message (abridged)                             via fake URL          at fapi.binance.com
    -1000  500   An unknown error occured while processing      OperationFailed       OperationFailed
    -1001  500   Internal error; unable to process your req     OperationFailed       OperationFailed
    -1003  429   Too many requests; current limit is ...        DDoSProtection        DDoSProtection
    -1008  503   Request throttled by system-level protection   ExchangeError         OperationFailed
    -1015  429   Too many new orders; current limit is ...      DDoSProtection        DDoSProtection
    -1021  400   Timestamp for this request is outside of ...   InvalidNonce          InvalidNonce
    -1022  400   Signature for this request is not valid.       AuthenticationError   AuthenticationError
    -1102  400   Mandatory parameter '%s' was not sent, ...     BadRequest            BadRequest
    -1106  400   Parameter '%s' sent when not required.         BadRequest            BadRequest
    -1111  400   Precision is over the maximum defined for ...  BadRequest            BadRequest
    -1116  400   Invalid orderType.                             BadRequest            BadRequest
    -1121  400   Invalid symbol.                                BadSymbol             BadSymbol
    -1125  400   This listenKey does not exist.                 AuthenticationError   AuthenticationError
    -1128  400   Combination of optional parameters invalid.    BadRequest            BadRequest
    -2011  400   Unknown order sent.                            OrderNotFound         OrderNotFound
    -2013  400   Order does not exist.                          OrderNotFound         OrderNotFound
    -2014  401   API-key format invalid.                        AuthenticationError   AuthenticationError
    -2015  401   Invalid API-key, IP, or permissions for ...    AuthenticationError   AuthenticationError
    -2019  400   Margin is insufficient.                        ExchangeError         InsufficientFunds
    -2022  400   ReduceOnly Order is rejected.                  ExchangeError         InvalidOrder
    -4003  400   Quantity less than zero.                       BadRequest            BadRequest
    -4004  400   Quantity less than min quantity.               BadRequest            BadRequest
    -4005  400   Quantity greater than max quantity.            BadRequest            BadRequest
    -4014  400   Price not increased by tick size.              BadRequest            BadRequest
    -4015  400   Client order id is not valid.                  BadRequest            BadRequest
    -4023  400   Qty not increased by step size.                BadRequest            BadRequest
    -4046  400   No need to change margin type.                 MarginModeAlreadySet  MarginModeAlreadySet
    -4059  400   No need to change position side.               OperationRejected     OperationRejected
    -4061  400   Order's position side does not match ...       OperationRejected     OperationRejected
    -4116  400   clientOrderId is duplicated                    ExchangeError         InvalidOrder
    -4120  400   Order type not supported for this endpoint...  ExchangeError         InvalidOrder
    -4164  400   Order's notional must be no smaller than %s    ExchangeError         InvalidOrder
    -5021  400   Due to the order could not be filled imm...    InvalidOrder          OrderNotFillable
    -5022  400   Due to the order could not be executed as ...  InvalidOrder          OrderNotFillable

Without a Binance body ccxt goes by transport or HTTP status (checked in test_binance_fake.py)::

    response lost, connection closed (order_unknown mode=disconnect)   NetworkError
    no answer before ccxt's timeout (order_unknown mode=timeout)       RequestTimeout
    HTTP 429 / 418 (any body)                                         DDoSProtection
    HTTP 503 with a body that is not Binance JSON                     ExchangeNotAvailable

A duplicate newClientOrderId among the account's open orders is -4116 "clientOrderId is duplicated"
(Binance's DUPLICATED_CLIENT_ORDER_ID); -4015 is only for an id that breaks ^[.A-Z:/a-z0-9_-]{1,36}$.
A client id of a finished order may be reused. Conditional types (STOP*, TAKE_PROFIT*, TRAILING_*)
on /fapi/v1/order are -4120, as on Binance since the move to the Algo Order API.

The venue
---------
One USDT wallet per account (VenueConfig.starting_balance), cross margin (the isolated flag is kept
and reported, not modelled), one-way mode by default (positionSide/dual switches to hedge mode, where
orders need positionSide LONG/SHORT and reduceOnly is refused with -1106). Per symbol a seeded
Gaussian walk of the best bid (in ticks) steps every tick_interval_s; ask = bid + spread; mark =
mid. MARKET orders and crossing LIMIT orders fill at the touch as taker in fill_chunks trades;
resting LIMIT orders fill at their price as maker when the walk crosses them, at most the touch
quantity per tick; GTX that would cross: -5022; FOK that cannot fill: -5021; IOC remainder EXPIRED.
Fees: maker_fee / taker_fee on notional, commission asset USDT; realizedPnl per trade (before fees);
trade ids unique across the venue. Filters and checks in Binance's order: -1102, -1117, -4120, -1116,
-1136, -4061/-1106 (position mode), -1100, -1106 (price on MARKET), -1115, -4015, -4116, -1111, -4003,
-4004, -4005, -4023, -4001, -4013, -4002, -4014, reject fault, -2022, -4164, -2019, -5022, -5021.
newOrderRespType ACK (default) answers the order as accepted; RESULT as it stands after matching.
Prices and quantities are printed with the symbol's pricePrecision / quantityPrecision ("60000.10",
"0.010"), avgPrice "0.00" before a fill and the exact average after, money with 8 decimals.

User-data stream (/ws/<listenKey>, also in combined streams): ORDER_TRADE_UPDATE (every documented
field; N/n only on events that carry a commission, as documented), TRADE_LITE, ACCOUNT_UPDATE (m,
B, P), ACCOUNT_CONFIG_UPDATE (leverage), listenKeyExpired ("E" is a string, as documented). A fill
sends TRADE_LITE, ORDER_TRADE_UPDATE then ACCOUNT_UPDATE (account_update_first flips the last two:
Binance orders events only within one type). listenKey: one per account, listen_key_ttl_s (3600 s
default), POST returns the active key and extends it, PUT extends (-1125 when none), DELETE ends it.
On expiry listenKeyExpired is sent and the key goes silent; its connections stay open. Market
streams: <symbol>@bookTicker (each tick), @markPrice (mark_price_interval_s), @markPrice@1s
(mark_price_fast_interval_s), @kline_<interval> (every 250 ms, x=true on the closing update;
kline_seconds shortens an interval for tests, e.g. {"1m": 1.0}); SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS on any connection; /public, /market, /private prefixes are accepted too. The
server pings every ws_ping_interval_s (websocket-level pings; clients answer with pongs).
GET /fapi/v1/klines before the fake's start returns deterministic synthetic bars.

Fault switch
------------
``fake.arm(kind, count=N | seconds=T | neither (until cleared), **params) -> id``, ``fake.clear(id |
kind=...)``, ``fake.faults()``; over HTTP: POST /_fake/faults {"kind", "count", "seconds", ...params},
GET /_fake/faults, DELETE /_fake/faults[/<id>][?kind=]. Filters in params: api_key, symbol, side,
path, method, scope. Kinds (FaultKind):

    rate_limit            429 + Retry-After (retry_after), -1003; the request has no effect
    ip_ban                418 + Retry-After, -1003 "Way too many requests; IP(...) banned until ..."
    http_error            status/code/msg (default 503, -1001, "Service Unavailable."); no effect
    order_unknown         the request IS executed (default POST /fapi/v1/order), then its answer is
                          lost: mode=disconnect (connection closed), timeout (held delay_s, then
                          closed) or error (status/code/msg, default 503 -1000 "Unknown error, please
                          check your request or try again later."; e.g. 500 -1001)
    reject                the next orders fail with code (-2022, -4164, -5022, -4061, -2019, ...)
    partial_fills         the next orders fill in `chunks` trades `delay_s` apart (resting orders:
                          at most 1/chunks of the quantity per tick)
    no_futures_permission the key acts as without futures permission (-2015 on /fapi, enableFutures
                          false in apiRestrictions)
    clock_drift           the venue clock runs offset_ms off (client timestamps -> -1021)
    keepalive_fail        PUT listenKey -> -1125 (expire=True also ends the key, without an event)
    user_stream_silent    user-data events are dropped (count counts events); connections stay open,
                          so fills made meanwhile are visible only via REST (userTrades, order)
    ws_refuse             new websocket handshakes get HTTP 503 (scope user | market | all)

Actions: fake.expire_listen_keys([api_key]) (listenKeyExpired now; POST /_fake/listen_keys/expire),
fake.drop_connections(scope) (POST /_fake/ws/drop), fake.set_price (POST /_fake/price {"symbol",
"bid", "pause"}), POST /_fake/walk/resume, POST /_fake/tick, POST /_fake/keys (add a key),
POST /_fake/keys/<api_key>/permissions {"enable_futures": false}, GET /_fake/state, GET
/_fake/requests. Automatic limits also apply: weight_limit_1m (2400) per IP -> 429 -1003, then a
418 ban after bans_after_429s refusals in a minute; order_limit_10s / order_limit_1m -> 429 -1015.
"""

from .config import KeySpec, SymbolSpec, VenueConfig
from .faults import FaultKind
from .server import BinanceFake

__all__ = ["BinanceFake", "FaultKind", "KeySpec", "SymbolSpec", "VenueConfig"]
