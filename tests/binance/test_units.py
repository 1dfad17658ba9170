"""Pure parts, without a venue: error mapping, rate-limit state on a test clock, filters, event order."""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from pathlib import Path

import pytest

from exchange.binance_usdm.account_state import AccountState
from exchange.binance_usdm.credentials import ApiCredentials, CredentialsError, RedactingFilter, register_secrets
from exchange.binance_usdm.errors import OrderThrottled, VenueFailure, VenueThrottled, to_error
from exchange.binance_usdm.filters import SymbolRules, fmt
from exchange.binance_usdm.memory import OrderMemory, TradeLedger
from exchange.binance_usdm.ratelimit import RateLimiter
from exchange.binance_usdm.user_events import UserEventTranslator
from exchange.errors import BadRequest, ExchangeError, ExchangeUnavailable, OrderNotFound, OrderRejected
from exchange.streams import BalanceChanged, OrderChanged, PositionChanged, TradeExecuted

# --- Binance code -> our error ---------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code", "cls", "ours"), [
    (400, -2019, OrderRejected, "insufficient_margin"),
    (400, -2022, OrderRejected, "reduce_only_rejected"),
    (400, -4164, OrderRejected, "min_notional"),
    (400, -5022, OrderRejected, "post_only_would_cross"),
    (400, -4061, OrderRejected, "position_side_mismatch"),
    (400, -2013, OrderNotFound, "unknown_order"),
    (400, -2011, OrderNotFound, "unknown_order"),
    (400, -1121, BadRequest, "unknown_symbol"),
    (401, -2015, BadRequest, "permission_denied"),
    (400, -1022, BadRequest, "auth_failed"),
    (400, -1021, ExchangeUnavailable, "clock_drift"),
    (500, -1001, ExchangeUnavailable, "venue_unavailable"),
    (503, -1008, ExchangeUnavailable, "venue_unavailable"),
    (503, None, ExchangeUnavailable, "venue_unavailable"),
    (None, None, ExchangeUnavailable, "venue_unavailable"),
    (400, -9999, OrderRejected, "binance_9999"),
])
def test_binance_codes_map_onto_our_errors(status: int | None, code: int | None, cls: type, ours: str) -> None:
    error = to_error(VenueFailure(status=status, code=code, msg="m"), placing=True)
    assert type(error) is cls and error.code == ours


def test_outcome_is_unknown_only_without_a_clear_answer() -> None:
    assert VenueFailure(status=None).outcome_unknown and VenueFailure(status=502).outcome_unknown
    assert VenueFailure(status=400, code=-1001).outcome_unknown
    assert not VenueFailure(status=400, code=-2019).outcome_unknown
    assert type(to_error(VenueFailure(status=400, code=-9999))) is ExchangeError  # not an order: no reject


# --- the rate limiter on a test clock ------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_700_000_050.0) -> None:  # 10 s into a minute
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_429_back_off_ends_at_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.refused(VenueFailure(status=429, code=-1003, retry_after_s=3))
    with pytest.raises(OrderThrottled) as placing:
        limiter.gate(placing=True)
    assert placing.value.code == "overloaded"
    with pytest.raises(VenueThrottled):
        limiter.gate(placing=False)
    clock.now += 3.01
    limiter.gate(placing=True)
    assert limiter.status().throttled_until is None and limiter.status().rate_limited_total == 1


def test_418_ban_lasts_until_the_time_binance_names() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    until_ms = int((clock.now + 600) * 1000)
    limiter.refused(VenueFailure(status=418, code=-1003, retry_after_s=10,
                                 msg=f"Way too many requests; IP(1.2.3.4) banned until {until_ms}."))
    assert limiter.banned and limiter.status().banned
    clock.now += 300
    with pytest.raises(OrderThrottled) as exc:
        limiter.gate(placing=True)
    assert exc.value.code == "ip_banned"
    clock.now += 301
    assert not limiter.banned
    limiter.gate(placing=True)


def test_used_up_minute_is_waited_out_and_headers_are_read() -> None:
    clock = Clock()
    limiter = RateLimiter(weight_limit_1m=100, clock=clock)
    limiter.observe({"X-MBX-USED-WEIGHT-1M": "100", "x-mbx-order-count-10s": "3"})
    assert limiter.status().used_weight_1m == 100 and limiter.status().order_count_10s == 3
    with pytest.raises(VenueThrottled):
        limiter.gate(placing=False)
    clock.now = (int(clock.now // 60) + 1) * 60.0
    limiter.gate(placing=False)
    assert limiter.status().used_weight_1m == 0


# --- filters ---------------------------------------------------------------------------------------


RULES = SymbolRules(symbol="BTCUSDT", status="TRADING", tick_size=Decimal("0.10"), min_price=Decimal("261.10"),
                    max_price=Decimal("809484"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                    max_qty=Decimal("1000"), market_step_size=Decimal("0.001"), market_min_qty=Decimal("0.001"),
                    market_max_qty=Decimal("120"), min_notional=Decimal("100"), price_precision=2,
                    quantity_precision=3)


def test_prices_round_away_from_the_touch_for_post_only_and_quantities_floor() -> None:
    assert fmt(RULES.price(60000.07, "BUY", post_only=True)) == "60000.00"
    assert fmt(RULES.price(60000.01, "SELL", post_only=True)) == "60000.10"
    assert fmt(RULES.price(60000.07, "BUY", post_only=False)) == "60000.10"
    assert fmt(RULES.qty(0.0199999, "LIMIT")) == "0.019" and fmt(RULES.qty(1e-5, "MARKET")) == "0.000"
    assert RULES.refuse(Decimal("0.001"), Decimal("60000"), "LIMIT", reduce_only=False,
                        reference=None).code == "min_notional"  # type: ignore[union-attr]
    assert RULES.refuse(Decimal("0.001"), Decimal("60000"), "LIMIT", reduce_only=True, reference=None) is None
    assert RULES.refuse(Decimal("0.001"), None, "MARKET", reduce_only=False, reference=None) is None  # venue decides
    assert RULES.refuse(Decimal("121"), None, "MARKET", reduce_only=True,
                        reference=None).code == "qty_above_max"  # type: ignore[union-attr]


# --- user events in the paper engine's order -------------------------------------------------------------


def otu(x: str, status: str, last: str, cumulative: str, trade_id: int = 0) -> dict:
    return {"e": "ORDER_TRADE_UPDATE", "E": 1_700_000_000_000, "T": 1_700_000_000_000, "o": {
        "s": "BTCUSDT", "c": "o-1.1", "S": "BUY", "o": "LIMIT", "f": "GTX", "q": "0.030", "p": "60000.00",
        "ap": "60000.00" if cumulative != "0.000" else "0.00", "x": x, "X": status, "i": 42, "l": last,
        "z": cumulative, "L": "60000.00" if last != "0.000" else "0.00", "n": "0.00120000", "N": "USDT",
        "T": 1_700_000_000_000, "t": trade_id, "m": True, "R": False, "rp": "0.00000000"}}


def account_update(amount: str) -> dict:
    return {"e": "ACCOUNT_UPDATE", "E": 1_700_000_000_001, "T": 1_700_000_000_001, "a": {
        "m": "ORDER", "B": [{"a": "USDT", "wb": "9999.99880000", "cw": "9999.99880000", "bc": "0"}],
        "P": [{"s": "BTCUSDT", "pa": amount, "ep": "60000.00000", "bep": "0", "cr": "0", "up": "0.00000000",
               "mt": "cross", "iw": "0", "ps": "BOTH", "ma": "USDT"}]}}


def lite(trade_id: int) -> dict:
    return {"e": "TRADE_LITE", "E": 1, "T": 1, "s": "BTCUSDT", "t": trade_id, "l": "0.010", "L": "60000.00"}


def kinds(events: list) -> list[str]:
    return [e.kind for e in events]


def test_partial_fills_use_the_last_fill_quantity_and_account_updates_follow_their_trade() -> None:
    clock = Clock(0.0)
    account = AccountState(["BTCUSDT"])
    translator = UserEventTranslator(account, OrderMemory(), TradeLedger(), hold_s=0.5, clock=clock)
    out = translator.translate(otu("NEW", "NEW", "0.000", "0.000"))
    assert kinds(out) == ["order"]
    # account update overtakes its trade: held until the trade arrives
    assert translator.translate(lite(7)) == []
    assert translator.translate(account_update("0.010")) == []
    out = translator.translate(otu("TRADE", "PARTIALLY_FILLED", "0.010", "0.010", trade_id=7))
    assert kinds(out) == ["trade", "order", "position", "balance"]
    assert out[0].fill.qty == pytest.approx(0.01) and out[1].order.filled_qty == pytest.approx(0.01)
    # the usual order: no hold needed
    out = translator.translate(otu("TRADE", "PARTIALLY_FILLED", "0.010", "0.020", trade_id=8))
    out += translator.translate(account_update("0.020"))
    assert kinds(out) == ["trade", "order", "position", "balance"]
    assert out[0].fill.qty == pytest.approx(0.01)  # l, not z
    # the same trade again (a replay after a resync) is not pushed twice
    again = translator.translate(otu("TRADE", "PARTIALLY_FILLED", "0.010", "0.020", trade_id=8))
    assert kinds(again) == ["order"] and translator.duplicates == 1
    # an announced trade that never comes releases what it held once the hold has passed
    translator.translate(lite(9))
    assert translator.translate(account_update("0.030")) == []
    clock.now += 0.6
    assert kinds(translator.release_due()) == ["position", "balance"]
    positions = [e for e in out if isinstance(e, PositionChanged)]
    assert positions[-1].position is not None and positions[-1].position.qty == pytest.approx(0.02)
    assert all(isinstance(e, TradeExecuted | OrderChanged | PositionChanged | BalanceChanged) for e in out)


def test_realized_pnl_since_the_position_opened() -> None:
    account = AccountState(["BTCUSDT"])
    account.set_leverage("BTCUSDT", 5)
    account.apply({"P": [{"s": "BTCUSDT", "pa": "0.02", "ep": "100", "up": "0", "ps": "BOTH"}]}, 1000)
    account._realized_pending["BTCUSDT"] = 1.5
    account.apply({"P": [{"s": "BTCUSDT", "pa": "0.01", "ep": "100", "up": "0", "ps": "BOTH"}]}, 2000)
    position = account.position("BTCUSDT")
    assert position is not None and position.realized_pnl == 1.5 and position.leverage == 5
    account._realized_pending["BTCUSDT"] = 0.7
    account.apply({"P": [{"s": "BTCUSDT", "pa": "-0.01", "ep": "90", "up": "0", "ps": "BOTH"}]}, 3000)
    flipped = account.position("BTCUSDT")
    assert flipped is not None and flipped.side == "SHORT" and flipped.realized_pnl == 0.0
    assert account.apply({"P": [{"s": "BTCUSDT", "pa": "0", "ep": "0", "up": "0", "ps": "BOTH"}]},
                         4000)[0].position is None


# --- credentials -----------------------------------------------------------------------------------------


def test_credentials_from_env_and_key_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="V7_EXCHANGE_API_SECRET"):
        ApiCredentials.from_env({"V7_EXCHANGE_API_KEY": "abc"})
    creds = ApiCredentials.from_env({"V7_EXCHANGE_API_KEY": "key-123", "V7_EXCHANGE_API_SECRET": "sec-456"})
    assert "key-123" not in repr(creds) and "sec-456" not in str(creds.model_dump())
    path = tmp_path / "keys.json"
    path.write_text('{"api_key": "key-123", "api_secret": "sec-456"}')
    os.chmod(path, 0o644)
    with pytest.raises(CredentialsError, match="chmod 600") as loose:
        ApiCredentials.from_key_file(path)
    assert "sec-456" not in str(loose.value)
    os.chmod(path, 0o600)
    assert ApiCredentials.from_key_file(path).secrets() == ("key-123", "sec-456")
    path.write_text('{"api_key": "key-123", "api_sec')
    with pytest.raises(CredentialsError) as broken:
        ApiCredentials.from_key_file(path)
    assert "key-123" not in str(broken.value)


def test_redacting_filter_masks_registered_secrets_and_listen_keys() -> None:
    register_secrets(ApiCredentials(api_key="AKEY0123456789", secret="SSECRET0123456789"))
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "headers %s url %s",
                               ({"X-MBX-APIKEY": "AKEY0123456789"}, "ws://h/ws/" + "L" * 60), None)
    RedactingFilter().filter(record)
    message = record.getMessage()
    assert "AKEY0123456789" not in message and "L" * 30 not in message and "***" in message
