"""Venue failures, each against the fake: unknown outcomes, rate limits and bans, clock drift, rejects."""

from __future__ import annotations

import time

import pytest

from exchange.adapter import OrderRequest
from exchange.binance_usdm import BinanceUsdmAdapter, OrderThrottled, VenueThrottled
from exchange.errors import ExchangeUnavailable, OrderRejected
from tests.binance.conftest import make_adapter
from tests.venue.binance import BinanceFake, FaultKind
from tests.venue.conftest import Creds

ORDER = "/fapi/v1/order"


def market(cid: str, side: str = "BUY", qty: float = 0.01, symbol: str = "BTCUSDT", **kw: object) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=side, order_type="MARKET", qty=qty, **kw)


def order_posts(fake: BinanceFake, cid: str) -> int:
    return sum(1 for r in fake.request_log()
               if r["method"] == "POST" and r["path"] == ORDER and r["params"].get("newClientOrderId") == cid)


def venue_orders(fake: BinanceFake, creds: Creds, cid: str) -> list[dict]:
    return [o for o in fake.orders(creds.api_key) if o["clientOrderId"] == cid]


# --- unknown outcome: look the order up before any retry -------------------------------------------


@pytest.mark.parametrize("mode", ["disconnect", "error"])
def test_lost_answer_is_resolved_by_lookup_never_placed_twice(adapter: BinanceUsdmAdapter, fake: BinanceFake,
                                                              creds: Creds, mode: str) -> None:
    fake.arm(FaultKind.ORDER_UNKNOWN, count=1, mode=mode, status=500, code=-1001,
             msg="Internal error; unable to process your request. Please try again.")
    order = adapter.place_order(market(f"u-{mode}.1"))
    assert order.status == "FILLED" and sum(f.qty for f in order.fills) == pytest.approx(0.01)
    assert order_posts(fake, f"u-{mode}.1") == 1 and len(venue_orders(fake, creds, f"u-{mode}.1")) == 1


def test_timed_out_placing_is_found_by_lookup(fake: BinanceFake, creds: Creds) -> None:
    adapter = make_adapter(fake, creds, timeout_s=0.3)
    try:
        fake.arm(FaultKind.ORDER_UNKNOWN, count=1, mode="timeout", delay_s=2.0)
        order = adapter.place_order(OrderRequest(client_order_id="u-t.1", symbol="BTCUSDT", side="BUY",
                                                 order_type="LIMIT", qty=0.01, price=50000.0, post_only=True))
        assert order.status == "NEW" and order_posts(fake, "u-t.1") == 1
        assert adapter._desk.unknown_outcomes == 1
    finally:
        adapter.close()


def test_refused_placing_is_sent_again_only_after_the_lookup_says_it_is_not_there(
        adapter: BinanceUsdmAdapter, fake: BinanceFake, creds: Creds) -> None:
    fake.arm(FaultKind.HTTP_ERROR, count=1, path=ORDER, method="POST")  # 503 -1001, not executed
    started = time.monotonic()
    order = adapter.place_order(market("u-r.1"))
    assert order.status == "FILLED"
    assert order_posts(fake, "u-r.1") == 2 and len(venue_orders(fake, creds, "u-r.1")) == 1
    # the second attempt waited until the first one's recvWindow (1 s here) had passed
    assert time.monotonic() - started >= 1.0
    lookups = [r for r in fake.request_log() if r["method"] == "GET" and r["path"] == ORDER]
    assert len(lookups) >= 2


def test_lookup_that_cannot_decide_raises_unavailable_and_places_nothing_more(fake: BinanceFake,
                                                                             creds: Creds) -> None:
    adapter = make_adapter(fake, creds, verify_new_ids=False)  # so the first GET is the lookup after the loss
    try:
        fake.arm(FaultKind.ORDER_UNKNOWN, count=1, mode="disconnect")
        fake.arm(FaultKind.HTTP_ERROR, count=20, path=ORDER, method="GET")
        with pytest.raises(ExchangeUnavailable) as exc:
            adapter.place_order(market("u-x.1"))
        assert exc.value.code == "order_outcome_unknown"
        assert order_posts(fake, "u-x.1") == 1
        fake.clear(kind=FaultKind.HTTP_ERROR)
        # Placing the same id again looks it up first (this process sent it): the order that landed is the answer.
        again = adapter.place_order(market("u-x.1"))
        assert again.status == "FILLED" and order_posts(fake, "u-x.1") == 1
    finally:
        adapter.close()


def test_duplicate_open_client_id_returns_the_existing_order(fake: BinanceFake, creds: Creds) -> None:
    first = make_adapter(fake, creds)
    second = make_adapter(fake, creds, verify_new_ids=False)  # another process that does not look first
    try:
        rest = OrderRequest(client_order_id="d-1.1", symbol="BTCUSDT", side="BUY", order_type="LIMIT", qty=0.01,
                            price=50000.0, post_only=True)
        placed = first.place_order(rest)
        again = second.place_order(rest)  # -4116 from the venue: the open order is the answer
        assert again.order_id == placed.order_id and len(venue_orders(fake, creds, "d-1.1")) == 1
    finally:
        first.close()
        second.close()


# --- rate limits ------------------------------------------------------------------------------------


def test_used_weight_is_tracked_from_the_headers(adapter: BinanceUsdmAdapter, fake: BinanceFake) -> None:
    adapter.fetch_balance()
    status = adapter.rate_limit
    assert status.weight_limit_1m == 2400 and 0 < status.used_weight_1m <= 2400
    adapter.place_order(market("w-1.1"))
    assert adapter.rate_limit.order_count_10s == 1


def test_429_backs_off_for_retry_after_without_sending(adapter: BinanceUsdmAdapter, fake: BinanceFake) -> None:
    fake.arm(FaultKind.RATE_LIMIT, count=1, retry_after=1, path=ORDER, method="POST")
    with pytest.raises(OrderThrottled) as exc:
        adapter.place_order(market("l-1.1"))
    assert exc.value.code == "overloaded" and exc.value.retry_at > time.time()  # the router retries "overloaded"
    sent = len(fake.request_log())
    with pytest.raises(VenueThrottled) as read:
        adapter.fetch_balance()
    assert read.value.code == "rate_limited" and len(fake.request_log()) == sent  # refused locally
    status = adapter.rate_limit
    assert status.throttled_until is not None and status.rate_limited_total == 1 and not status.banned
    assert order_posts(fake, "l-1.1") == 1  # (the back-off ending is test_ratelimit.py's, on a test clock)


def test_418_stops_new_orders_until_the_ban_ends(adapter: BinanceUsdmAdapter, fake: BinanceFake) -> None:
    fake.arm(FaultKind.IP_BAN, count=1, retry_after=120)
    with pytest.raises(OrderThrottled) as exc:
        adapter.place_order(market("b-1.1"))
    assert exc.value.code == "ip_banned"
    assert adapter.banned and adapter.rate_limit.banned_until is not None and adapter.rate_limit.bans_total == 1
    sent = len(fake.request_log())
    with pytest.raises(OrderThrottled) as again:
        adapter.place_order(market("b-2.1"))
    with pytest.raises(VenueThrottled) as read:
        adapter.fetch_positions()
    assert again.value.code == "ip_banned" and read.value.code == "ip_banned"
    assert len(fake.request_log()) == sent  # nothing sent during the ban (it would lengthen it)


# --- clock drift -------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset_ms", [30_000, -30_000])
def test_clock_drift_is_remeasured_and_the_request_retried_once(adapter: BinanceUsdmAdapter, fake: BinanceFake,
                                                                offset_ms: int) -> None:
    fake.arm(FaultKind.CLOCK_DRIFT, offset_ms=offset_ms)
    order = adapter.place_order(market(f"c-{offset_ms}.1"))
    assert order.status == "FILLED"
    assert adapter.time_offset_ms == pytest.approx(offset_ms, abs=500)
    codes = [r.get("code") for r in fake.request_log() if r["path"] == ORDER]
    assert -1021 in codes


# --- rejections by code ----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "ours"), [(-4164, "min_notional"), (-5022, "post_only_would_cross"),
                                            (-4061, "position_side_mismatch"), (-2019, "insufficient_margin")])
def test_rejections_map_by_binance_code(adapter: BinanceUsdmAdapter, fake: BinanceFake, code: int, ours: str) -> None:
    fake.arm(FaultKind.REJECT, count=1, code=code, symbol="BTCUSDT")
    with pytest.raises(OrderRejected) as exc:
        adapter.place_order(market(f"x{abs(code)}.1"))
    assert exc.value.code == ours and str(code) in exc.value.detail


def test_post_only_that_would_cross_is_a_reprice(adapter: BinanceUsdmAdapter, fake: BinanceFake) -> None:
    fake.set_price("BTCUSDT", "60000.0")
    with pytest.raises(OrderRejected) as exc:
        adapter.place_order(OrderRequest(client_order_id="p-1.1", symbol="BTCUSDT", side="BUY", order_type="LIMIT",
                                         qty=0.01, price=60010.0, post_only=True))
    assert exc.value.code == "post_only_would_cross"


def test_reduce_only_on_a_flat_symbol_is_already_flat(adapter: BinanceUsdmAdapter, fake: BinanceFake) -> None:
    with pytest.raises(OrderRejected) as exc:
        adapter.place_order(market("ro-1.1", side="SELL", reduce_only=True))
    assert exc.value.code == "reduce_only_rejected" and "already flat" in exc.value.detail
    adapter.place_order(market("ro-2.1", side="BUY"))
    with pytest.raises(OrderRejected) as same_side:
        adapter.place_order(market("ro-3.1", side="BUY", reduce_only=True))
    assert same_side.value.code == "reduce_only_rejected" and "LONG" in same_side.value.detail
