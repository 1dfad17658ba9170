"""The exit scanner's decisions, in-process: the exit rules at each level, one tick either side, and
which levels each open position gets (actors/exit_scanner/rules.py and registry.py; issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors.exit_scanner.registry import Held, Registry
from actors.exit_scanner.rules import ExitLevels
from bus.messages import LedgerEntry, StoredPosition

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
TICK = 0.01
US = timedelta(microseconds=1)


def levels(side: str, tp: float | None = 110.0, sl: float | None = 90.0,
           ttl_ts: datetime | None = None) -> ExitLevels:
    return ExitLevels("BTCUSDT", side, "p1", tp=tp, sl=sl, ttl_ts=ttl_ts)  # type: ignore[arg-type]


# LONG: TP at 110 (mark >= tp), SL at 90 (mark <= sl). SHORT: TP at 90 (mark <= tp), SL at 110 (mark >= sl).
@pytest.mark.parametrize(("side", "tp", "sl", "mark", "expected"), [
    ("LONG", 110.0, 90.0, 110.0, ("TP", 110.0)),  # exactly at TP
    ("LONG", 110.0, 90.0, 110.0 + TICK, ("TP", 110.0)),
    ("LONG", 110.0, 90.0, 110.0 - TICK, None),
    ("LONG", 110.0, 90.0, 90.0, ("SL", 90.0)),  # exactly at SL
    ("LONG", 110.0, 90.0, 90.0 - TICK, ("SL", 90.0)),
    ("LONG", 110.0, 90.0, 90.0 + TICK, None),
    ("LONG", 110.0, 90.0, 100.0, None),
    ("SHORT", 90.0, 110.0, 90.0, ("TP", 90.0)),
    ("SHORT", 90.0, 110.0, 90.0 - TICK, ("TP", 90.0)),
    ("SHORT", 90.0, 110.0, 90.0 + TICK, None),
    ("SHORT", 90.0, 110.0, 110.0, ("SL", 110.0)),
    ("SHORT", 90.0, 110.0, 110.0 + TICK, ("SL", 110.0)),
    ("SHORT", 90.0, 110.0, 110.0 - TICK, None),
    ("SHORT", 90.0, 110.0, 100.0, None),
    # A level that is not set never fires, however far the mark goes.
    ("LONG", None, 90.0, 1e9, None),
    ("LONG", 110.0, None, TICK, None),
    ("SHORT", None, 110.0, TICK, None),
    ("SHORT", 90.0, None, 1e9, None),
    ("LONG", None, None, TICK, None),
    ("SHORT", None, None, 1e9, None),
    # The other side's level still fires when one is missing.
    ("LONG", None, 90.0, 90.0, ("SL", 90.0)),
    ("LONG", 110.0, None, 110.0, ("TP", 110.0)),
    ("SHORT", None, 110.0, 110.0, ("SL", 110.0)),
    ("SHORT", 90.0, None, 90.0, ("TP", 90.0)),
])
def test_price_levels_at_and_either_side(side: str, tp: float | None, sl: float | None, mark: float,
                                         expected: tuple[str, float] | None) -> None:
    assert levels(side, tp, sl).check(mark, NOW) == expected


@pytest.mark.parametrize(("ttl_ts", "expected"), [
    (NOW, ("TTL", None)),  # the TTL is exactly now: it has come
    (NOW - US, ("TTL", None)),
    (NOW + US, None),  # a microsecond before the TTL
    (None, None),
])
def test_ttl_exactly_now_and_just_before(ttl_ts: datetime | None, expected: tuple[str, None] | None) -> None:
    assert levels("LONG", ttl_ts=ttl_ts).check(100.0, NOW) == expected
    assert levels("SHORT", tp=90.0, sl=110.0, ttl_ts=ttl_ts).check(100.0, NOW) == expected


@pytest.mark.parametrize(("side", "tp", "sl", "mark", "ttl_ts", "expected"), [
    # Crossed levels (tp == sl) hold both at once: the stop wins, it limits the loss.
    ("LONG", 100.0, 100.0, 100.0, None, ("SL", 100.0)),
    ("SHORT", 100.0, 100.0, 100.0, None, ("SL", 100.0)),
    ("LONG", 100.0, 105.0, 100.0, None, ("SL", 105.0)),
    ("SHORT", 105.0, 100.0, 100.0, None, ("SL", 100.0)),
    # Stop and TTL: the stop; TP and TTL: the TP (its level is reported, TTL has none).
    ("LONG", 110.0, 90.0, 90.0, NOW, ("SL", 90.0)),
    ("SHORT", 90.0, 110.0, 110.0, NOW, ("SL", 110.0)),
    ("LONG", 110.0, 90.0, 110.0, NOW, ("TP", 110.0)),
    ("SHORT", 90.0, 110.0, 90.0, NOW, ("TP", 90.0)),
    ("LONG", 100.0, 100.0, 100.0, NOW, ("SL", 100.0)),
    # Neither price level: the TTL alone.
    ("LONG", 110.0, 90.0, 100.0, NOW, ("TTL", None)),
    ("SHORT", 90.0, 110.0, 100.0, NOW, ("TTL", None)),
])
def test_precedence_when_several_hold(side: str, tp: float, sl: float, mark: float, ttl_ts: datetime | None,
                                      expected: tuple[str, float | None]) -> None:
    assert levels(side, tp, sl, ttl_ts).check(mark, NOW) == expected


@pytest.mark.parametrize(("tp", "sl", "protected"), [
    (110.0, 90.0, True), (110.0, None, False), (None, 90.0, False), (None, None, False)])
def test_protected_needs_both_levels(tp: float | None, sl: float | None, protected: bool) -> None:
    assert levels("LONG", tp, sl).protected is protected


def test_levels_come_from_the_intent_unless_told() -> None:
    assert levels("LONG").source == "intent"


# --- the registry: which levels each open position gets --------------------------------------------------------


def stored(symbol: str, side: str = "LONG", qty: float = 1.0, tp: float | None = 110.0, sl: float | None = 90.0,
           ttl_ts: datetime | None = None, entry: float = 100.0) -> StoredPosition:
    return StoredPosition(
        mode="SIM", account="paper", symbol=symbol, side=side, qty=qty, entry_price=entry,  # type: ignore[arg-type]
        entry_time=NOW, position_id=f"p-{symbol}", tp=tp, sl=sl, ttl_ts=ttl_ts, trade_min_price=entry,
        trade_max_price=entry, opened_seq=1, updated_seq=1, created_at=NOW, updated_at=NOW)


def test_registry_takes_the_store_levels_of_open_positions_only() -> None:
    reg = Registry()
    assert reg.by_symbol == {} and reg.ledger_disagreements([entry("BTCUSDT")]) == []  # nothing held yet
    ttl = NOW + timedelta(minutes=5)
    btc, eth = stored("BTCUSDT", ttl_ts=ttl), stored("ETHUSDT", side="SHORT", tp=90.0, sl=110.0)
    reg.replace([btc, eth, stored("SOLUSDT", qty=0.0)])  # a flat row is not held
    assert reg.by_symbol == {
        "BTCUSDT": Held(btc, ExitLevels("BTCUSDT", "LONG", "p-BTCUSDT", 110.0, 90.0, ttl, "store")),
        "ETHUSDT": Held(eth, ExitLevels("ETHUSDT", "SHORT", "p-ETHUSDT", 90.0, 110.0, None, "store")),
    }
    reg.replace([eth])  # the latest view replaces the registry, it does not add to it
    assert list(reg.by_symbol) == ["ETHUSDT"]


def test_a_zero_level_is_no_level() -> None:
    reg = Registry()
    reg.replace([stored("BTCUSDT", tp=0.0, sl=0.0), stored("ETHUSDT", tp=0.0), stored("SOLUSDT", sl=0.0)])
    got = {s: (h.levels.tp, h.levels.sl, h.protected) for s, h in reg.by_symbol.items()}
    assert got == {"BTCUSDT": (None, None, False), "ETHUSDT": (None, 90.0, False), "SOLUSDT": (110.0, None, False)}
    # Taken as levels, 0.0 would take a LONG's profit and stop a SHORT out at any mark.
    reg.replace([stored("BTCUSDT", tp=0.0), stored("ETHUSDT", side="SHORT", tp=90.0, sl=0.0)])
    assert [h.levels.check(100.0, NOW) for h in reg.by_symbol.values()] == [None, None]


def test_held_protected_and_unrealized_follow_the_position() -> None:
    reg = Registry()
    reg.replace([stored("BTCUSDT", qty=2.0, entry=100.0), stored("ETHUSDT", side="SHORT", qty=3.0, sl=None)])
    btc, eth = reg.by_symbol["BTCUSDT"], reg.by_symbol["ETHUSDT"]
    assert (btc.protected, eth.protected) == (True, False)
    assert btc.unrealized_at(104.0) == 8.0  # (104 - 100) * 2, long
    assert eth.unrealized_at(104.0) == -12.0  # (104 - 100) * 3, short
    assert eth.unrealized_at(99.0) == 3.0


def entry(symbol: str, **kw: object) -> LedgerEntry:
    fields: dict[str, object] = {"symbol": symbol, "side": "LONG", "position_id": f"p-{symbol}", "qty": 1.0,
                                 "entry_price": 100.0, "tp": 110.0, "sl": 90.0}
    return LedgerEntry.model_validate({**fields, **kw})


def test_ledger_disagreements_name_each_field_that_differs() -> None:
    reg = Registry()
    reg.replace([stored(s) for s in ("AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT")])
    ledger = [
        entry("ZZZUSDT", tp=1.0),  # not held here: not this registry's business (and the rest are still read)
        entry("FFFUSDT", sl=91.0),  # before the others: the answer is sorted, not in ledger order
        entry("AAAUSDT"),  # agrees
        entry("BBBUSDT", position_id="other"),
        entry("CCCUSDT", side="SHORT"),
        entry("DDDUSDT", tp=111.0),
        entry("EEEUSDT", tp=None),
        entry("AAAUSDT", qty=5.0, entry_price=1.0, ttl_ts=NOW),  # size, price and TTL are not compared
    ]
    assert reg.ledger_disagreements(ledger) == ["BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT"]
    assert reg.ledger_disagreements([]) == []
