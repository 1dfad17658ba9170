"""Crash anywhere, replay, and the store is exactly what it would have been without the crash.

Random sequences of intents, fills (including resends and odd reduce-only ones), marks,
ledger updates and scope switches go through a real store on real SQLite in random batches.
One run applies everything; another dies at a random batch boundary without any clean-up (as
with kill -9) and a fresh store replays the journal from its `applied_seq()`, the way the
state writer does on start. Open positions, closed trades and the audit trail must be equal.
"""

from __future__ import annotations

import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from actors.state_writer.hooks import Committed
from actors.state_writer.store import PositionStore
from actors.state_writer.store.tables import PositionEventRow, TradeRecordRow
from bus.messages import Message, SwitchScope
from config.settings import Settings
from tests.support.messages import fill, intent, ledger, marks

SYMBOLS = ("BTCUSDT", "ETHUSDT")
T0 = datetime(2025, 6, 1, tzinfo=UTC)

step = st.one_of(
    st.tuples(st.just("marks"), st.integers(70, 130), st.integers(70, 130)),
    st.tuples(st.just("intent"), st.sampled_from(SYMBOLS), st.sampled_from(["BUY", "SELL"]),
              st.integers(1, 3), st.integers(80, 120)),
    st.tuples(st.just("fill"), st.sampled_from(SYMBOLS), st.sampled_from(["BUY", "SELL"]), st.integers(1, 3),
              st.integers(80, 120), st.booleans()),
    st.tuples(st.just("resend")),
    st.tuples(st.just("ledger"), st.sampled_from(SYMBOLS), st.integers(121, 140)),
    st.tuples(st.just("switch"), st.sampled_from([("SIM", "paper"), ("LIVE", "main")])),
)


# Every run opens a position on each symbol and moves the marks first, so the crash often lands
# while extremes are in memory only: the window the replay point exists for.
OPENING: list[tuple[Any, ...]] = [
    ("intent", "BTCUSDT", "BUY", 2, 100), ("fill", "BTCUSDT", "BUY", 2, 100, False),
    ("intent", "ETHUSDT", "SELL", 2, 100), ("fill", "ETHUSDT", "SELL", 2, 100, False),
    ("marks", 105, 95),
]


def _messages(steps: list[tuple[Any, ...]]) -> list[Message]:
    out: list[Message] = []
    last_intent: dict[str, str] = {}
    fills = []
    for n, s in enumerate(OPENING + steps):
        ts = T0 + timedelta(seconds=n)
        if s[0] == "intent":
            _, sym, side, qty, price = s
            iid = f"i{n}"
            last_intent[sym] = iid
            out.append(intent(iid, sym, side, float(qty), ts=ts, tp=float(price + 15), sl=float(price - 15)))
        elif s[0] == "fill":
            _, sym, side, qty, price, reduce_only = s
            f = fill(f"t{n}", last_intent.get(sym, f"x{n}"), sym, side, float(qty), float(price), fee=0.01 * qty,
                     reduce_only=reduce_only, ts=ts)
            fills.append(f)
            out.append(f)
        elif s[0] == "resend" and fills:
            out.append(fills[-1])  # the same trade id again (a router that lost its ACK)
        elif s[0] == "marks":
            out.append(marks(BTCUSDT=float(s[1]), ETHUSDT=float(s[2])))
        elif s[0] == "ledger":
            sym = s[1]
            out.append(ledger({"symbol": sym, "position_id": last_intent.get(sym, "none"), "tp": float(s[2])}))
        elif s[0] == "switch":
            out.append(SwitchScope(mode=s[1][0], account=s[1][1], ts=ts))
    return out


def _batches(msgs: list[Message], cuts: list[int]) -> list[list[Committed]]:
    committed = [Committed(i + 1, "prop", 1, i + 1, m) for i, m in enumerate(msgs)]
    edges = sorted({0, len(committed), *(c % (len(committed) + 1) for c in cuts)})
    return [committed[a:b] for a, b in itertools.pairwise(edges) if b > a]


def _store(home: Path, flush_s: float) -> PositionStore:
    # The store's day is the messages' day, so today's P&L and trades count every one of them.
    store = PositionStore(Settings.model_validate({"home": home, "store": {"extremes_flush_s": flush_s}}),
                          clock=lambda: T0 + timedelta(hours=12))
    store.open()
    return store


def _outcome(store: PositionStore) -> tuple[Any, ...]:
    with Session(store.engine) as s:
        trades = [tuple(getattr(t, c) for c in ("position_id", "symbol", "side", "qty", "entry_price", "exit_price",
                                                 "gross_pnl", "fees", "mae", "mfe", "closed_seq", "close_reason"))
                  for t in s.scalars(select(TradeRecordRow).order_by(TradeRecordRow.id))]
        events = [(e.seq, e.kind, e.mode, e.symbol, e.position_id, e.qty_after, e.price, e.realized_pnl, e.fee)
                  for e in s.scalars(select(PositionEventRow).order_by(PositionEventRow.id))]
    # The in-memory views: after a crash they are loaded from the database and caught up by the
    # replay, and must then be exactly what the store that never crashed built commit by commit.
    views = [store.view(k) for k in ("open_positions", "active_scope", "pnl_today", "trades_today")]
    return *views, trades, events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=3, max_size=40), st.lists(st.integers(0, 60), min_size=2, max_size=12),
       st.integers(1, 60), st.sampled_from([0.0, 3600.0, 3600.0]))
def test_crash_at_any_batch_boundary_then_replay_equals_no_crash(
    steps: list[tuple[Any, ...]], cuts: list[int], crash_at: int, flush_s: float
) -> None:
    batches = _batches(_messages(steps), cuts)
    crash_at %= len(batches) + 1
    with tempfile.TemporaryDirectory() as ref_home, tempfile.TemporaryDirectory() as crash_home:
        reference = _store(Path(ref_home), flush_s)
        for batch in batches:
            reference.apply(batch)
        expected = _outcome(reference)
        reference.close()

        first = _store(Path(crash_home), flush_s)
        for batch in batches[:crash_at]:
            first.apply(batch)
        # kill -9: no final write. Only the OS-level effects remain (the lock goes with the process).
        assert first._lock is not None and first._engine is not None
        first._lock.release()
        first._engine.dispose()

        second = _store(Path(crash_home), flush_s)
        journal = [c for batch in batches for c in batch]
        replay = [c for c in journal[: sum(len(b) for b in batches[:crash_at])] if c.seq > second.applied_seq()]
        if replay:
            second.apply(replay)  # start-up replay of the journal tail
        for batch in batches[crash_at:]:
            second.apply(batch)
        assert _outcome(second) == expected
        second.close()
