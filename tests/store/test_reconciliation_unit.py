"""Reconciliation in-process (issue 14): a real positions store on SQLite in tmp_path, fed committed
reports and resolutions through its commit path as the writer does, with every event, issue and
metric label asserted exactly. tests/store/test_reconcile.py covers the same through writer
processes; these are the ones that can fail under a mutant of reconciliation.py or compare.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import select
from sqlalchemy.orm import Session

from actors.state_writer.hooks import Committed
from actors.state_writer.store import PositionStore
from actors.state_writer.store.compare import Mismatch, compare
from actors.state_writer.store.positions import EntryInfo, Position, open_position
from actors.state_writer.store.tables import PositionEventRow, ReconciliationIssueRow, TradeRecordRow
from actors.state_writer.store.unit import Issue
from bus.messages import ExchangePositionsReported, Message, ReportedPosition, ResolveMismatch
from config.settings import Settings
from tests.store.test_reconcile import done
from tests.support.messages import fill, intent, marks
from tests.support.metrics import parse

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)  # every fill of the book
R1 = T0 + timedelta(minutes=1)  # the reports, read after the book's fills
R2 = T0 + timedelta(minutes=2)
R3 = T0 + timedelta(minutes=3)
SIM = {"mode": "SIM", "account": "paper"}
# Events the store writes for other concerns (fills, marks): not this module's.
_OTHER_KINDS = {"open", "add", "reduce", "close", "fill_anomaly"}


class Store:
    """A positions store on SQLite in `home`, fed committed messages one batch at a time."""

    def __init__(self, home: Path, policy: str = "warn") -> None:
        self.home, self.seq = home, 0
        self.store = self.open(policy)

    def open(self, policy: str) -> PositionStore:
        self.registry = CollectorRegistry()
        store = PositionStore(Settings.model_validate({"home": self.home, "store": {"reconcile_policy": policy}}),
                              self.registry, clock=lambda: T0 + timedelta(hours=1))
        store.open()
        return store

    def reopen(self, policy: str) -> None:
        """A restart with another `store.reconcile_policy`: what the database kept is all there is."""
        self.store.close()
        self.store = self.open(policy)

    def send(self, *msgs: Message, src: str = "executor") -> int:
        batch = []
        for msg in msgs:
            self.seq += 1
            batch.append(Committed(self.seq, src, 1, self.seq, msg))
        self.store.apply(batch)
        return self.seq

    @property
    def issues(self) -> dict[str, Issue]:
        return {k[2]: i for k, i in self.store.state.issues.items()}

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        """Reconciliation's audit events after seq `after`: the columns it set, and the detail's keys."""
        with Session(self.store.engine) as s:
            rows = list(s.scalars(select(PositionEventRow).where(PositionEventRow.seq > after)
                                  .order_by(PositionEventRow.id)))
        out = []
        for r in rows:
            if r.kind in _OTHER_KINDS:
                continue
            cols = {"event": r.kind, "seq": r.seq, "ts": r.ts, "mode": r.mode, "account": r.account,
                    "symbol": r.symbol, "position_id": r.position_id, "side": r.side, "qty_before": r.qty_before,
                    "qty_after": r.qty_after, "price": r.price, "realized": r.realized_pnl}
            out.append({k: v for k, v in cols.items() if v is not None and (k, v) != ("realized", 0.0)}
                       | json.loads(r.detail))
        return out

    def issue_rows(self) -> dict[int, tuple[Any, ...]]:
        """Every issue row: its open fields (as `Issue`) and its status and resolution."""
        with Session(self.store.engine) as s:
            return {r.id: (Issue.from_row(r), r.status, r.resolved_seq, r.resolution, r.resolved_by)
                    for r in s.scalars(select(ReconciliationIssueRow))}

    def trades(self) -> list[tuple[Any, ...]]:
        with Session(self.store.engine) as s:
            return [(t.symbol, t.side, t.qty, t.entry_price, t.exit_price, t.gross_pnl, t.close_reason, t.closed_seq)
                    for t in s.scalars(select(TradeRecordRow).order_by(TradeRecordRow.id))]

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: v for (n, labels), v in parse(generate_latest(self.registry).decode()).items() if n == name}

    def position(self, symbol: str, mode: str = "SIM", account: str = "paper") -> Position | None:
        return self.store.state.positions.get((mode, account, symbol))


@pytest.fixture
def book(tmp_path: Path) -> Iterator[Store]:
    """SIM/paper: BTC LONG 1 @ 100 (mark 103), ETH LONG 2 @ 50 (mark 49), ADA LONG 4 @ 1 (mark 1.2),
    DOT SHORT 2 @ 10 (mark 9); LIVE/main: BTC LONG 1 @ 100. Every order done, every fill at T0."""
    s = Store(tmp_path)
    s.send(*_opened("i-btc", "BTCUSDT", "BUY", 1.0, 100.0), *_opened("i-eth", "ETHUSDT", "BUY", 2.0, 50.0),
           *_opened("i-ada", "ADAUSDT", "BUY", 4.0, 1.0), *_opened("i-dot", "DOTUSDT", "SELL", 2.0, 10.0),
           *_opened("l-btc", "BTCUSDT", "BUY", 1.0, 100.0, mode="LIVE", account="main"),
           marks(BTCUSDT=103.0, ETHUSDT=49.0, ADAUSDT=1.2, DOTUSDT=9.0))
    yield s
    s.store.close()


def _opened(intent_id: str, symbol: str, side: str, qty: float, price: float, **scope: str) -> list[Message]:
    return [intent(intent_id, symbol, side, qty, **scope),
            fill(f"t-{intent_id}", intent_id, symbol, side, qty, price, ts=T0, **scope),
            done(intent_id, symbol, side, qty, **scope)]


def reported(*symbols: str, ts: datetime = R1, **positions: tuple[str, float, float, float | None]
             ) -> ExchangePositionsReported:
    """A SIM/paper report listing `symbols` (and every symbol of `positions`): side, qty, entry, mark."""
    return ExchangePositionsReported(
        **SIM, trigger="periodic", exchange_ok=True, ts=ts, symbols=[*symbols, *positions],  # type: ignore[arg-type]
        positions=[ReportedPosition(symbol=s, side=side, qty=q, entry_price=e, mark_price=m)  # type: ignore[arg-type]
                   for s, (side, q, e, m) in positions.items()])


def mismatched(ts: datetime = R1, eth: float = 1.5) -> ExchangePositionsReported:
    """BTC store only, ETH qty, SOL exchange only, DOT side; ADA and XRP agree (ADA within the default tolerance)."""
    return reported("BTCUSDT", "XRPUSDT", ts=ts, ETHUSDT=("LONG", eth, 50.5, 51.0), SOLUSDT=("SHORT", 3.0, 20.0, 19.5),
                    DOTUSDT=("LONG", 2.0, 9.5, None), ADAUSDT=("LONG", 4.0 * (1 + 1e-10), 1.0, None))


def issue(symbol: str, kind: str, seq: int, *, policy: str = "warn", last: int | None = None, row: int = 0,
          opened_at: datetime = R1, **fields: Any) -> Issue:
    return Issue(**SIM, symbol=symbol, kind=kind, policy=policy, opened_seq=seq,
                 last_seen_seq=seq if last is None else last, opened_at=opened_at, row_id=row, **fields)


def book_issues(seq: int, policy: str = "warn", last: int | None = None, eth: float = 1.5) -> dict[str, Issue]:
    """The issues `mismatched()` at `seq` raises on the book."""
    kw = {"policy": policy, "last": last}
    return {
        "BTCUSDT": issue("BTCUSDT", "store_only", seq, row=1, detail="store LONG 1, exchange flat", store_side="LONG",
                         store_qty=1.0, **kw),
        "ETHUSDT": issue("ETHUSDT", "qty_mismatch", seq, row=2, detail=f"store LONG 2, exchange LONG {eth:g}",
                         store_side="LONG", store_qty=2.0, exchange_side="LONG", exchange_qty=eth,
                         exchange_entry_price=50.5, exchange_mark_price=51.0, **kw),
        "SOLUSDT": issue("SOLUSDT", "exchange_only", seq, row=3, detail="store flat, exchange SHORT 3",
                         exchange_side="SHORT", exchange_qty=3.0, exchange_entry_price=20.0,
                         exchange_mark_price=19.5, **kw),
        "DOTUSDT": issue("DOTUSDT", "side_mismatch", seq, row=4, detail="store SHORT 2, exchange LONG 2",
                         store_side="SHORT", store_qty=2.0, exchange_side="LONG", exchange_qty=2.0,
                         exchange_entry_price=9.5, **kw),
    }


def mismatch_event(seq: int, symbol: str, kind: str, detail: str, policy: str = "warn", ts: datetime = R1
                   ) -> dict[str, Any]:
    action = {"halt": "halt scope", "adopt_exchange": "block new entries; adopt if the next report agrees"}.get(
        policy, "block new entries")
    return {"event": "reconcile_mismatch", "seq": seq, "ts": ts, **SIM, "symbol": symbol, "kind": kind,
            "policy": policy, "detail": detail, "action": action}


def checked_event(seq: int, symbols: int, mismatches: list[str], policy: str = "warn",
                  unsettled: list[str] | None = None, ts: datetime = R1, trigger: str = "periodic") -> dict[str, Any]:
    return {"event": "reconcile_checked", "seq": seq, "ts": ts, **SIM, "trigger": trigger, "source": "executor",
            "symbols": symbols, "mismatches": mismatches, "unsettled": unsettled or [], "policy": policy}


def resolved_event(seq: int, symbol: str, kind: str, resolution: str, by: str, note: str, opened_seq: int,
                   ts: datetime = R1) -> dict[str, Any]:
    return {"event": "reconcile_resolved", "seq": seq, "ts": ts, **SIM, "symbol": symbol, "kind": kind,
            "resolution": resolution, "resolved_by": by, "note": note, "opened_seq": opened_seq}


BOOK_MISMATCHES = ["BTCUSDT:store_only", "ETHUSDT:qty_mismatch", "SOLUSDT:exchange_only", "DOTUSDT:side_mismatch"]


def raised_events(seq: int, policy: str = "warn", ts: datetime = R1) -> list[dict[str, Any]]:
    return [mismatch_event(seq, i.symbol, i.kind, i.detail, policy, ts) for i in book_issues(seq).values()]


# --- a report the exchange could not answer ---------------------------------------------------------------------


def test_exchange_unavailable_compares_nothing(book: Store) -> None:
    first = book.send(mismatched())
    before = (dict(book.store.state.positions), book_issues(first), dict(book.store.state.last_report_seq))
    seq = book.send(ExchangePositionsReported(**SIM, trigger="reconnect", exchange_ok=False, error="HTTP 503",  # type: ignore[arg-type]
                                              ts=R2))
    assert book.events(after=first) == [{"event": "reconcile_unavailable", "seq": seq, "ts": R2, **SIM,
                                         "trigger": "reconnect", "error": "HTTP 503", "source": "executor"}]
    assert (book.store.state.positions, book.issues, book.store.state.last_report_seq) == before
    assert book.store.state.last_report_seq == {"SIM/paper": first}
    assert book.samples("v7_store_reconcile_reports_total") == {
        (("result", "compared"),): 1.0, (("result", "exchange_unavailable"),): 1.0}


# --- warn: every kind of mismatch, seen again, changed, agreed again -------------------------------------------


def test_warn_raises_each_mismatch_once_with_its_detail(book: Store, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="actors.state_writer.store.reconciliation"):
        seq = book.send(mismatched())
    assert book.issues == book_issues(seq)
    assert {r: row[1:] for r, row in book.issue_rows().items()} == dict.fromkeys(range(1, 5),
                                                                                ("open", None, None, None))
    assert [row[0] for row in book.issue_rows().values()] == list(book_issues(seq).values())
    # ADA (within the tolerance) and XRP (flat on both sides) agree; LIVE's BTC is another scope.
    assert book.events(after=seq - 1) == [*raised_events(seq), checked_event(seq, 6, BOOK_MISMATCHES)]
    assert book.store.state.last_report_seq == {"SIM/paper": seq}
    assert book.samples("v7_store_reconcile_mismatches_total") == {
        (("kind", k), ("policy", "warn")): 1.0
        for k in ("store_only", "qty_mismatch", "exchange_only", "side_mismatch")}
    assert book.samples("v7_store_reconcile_reports_total") == {(("result", "compared"),): 1.0}
    assert [r.getMessage() for r in caplog.records] == [
        "reconciliation SIM/paper BTCUSDT: store_only (store LONG 1, exchange flat), policy warn",
        "reconciliation SIM/paper ETHUSDT: qty_mismatch (store LONG 2, exchange LONG 1.5), policy warn",
        "reconciliation SIM/paper SOLUSDT: exchange_only (store flat, exchange SHORT 3), policy warn",
        "reconciliation SIM/paper DOTUSDT: side_mismatch (store SHORT 2, exchange LONG 2), policy warn"]
    assert book.position("ETHUSDT") is not None and book.position("ETHUSDT").qty == 2.0  # type: ignore[union-attr]
    assert book.position("SOLUSDT") is None, "warn never changes the store"


def test_a_repeat_moves_last_seen_and_a_change_is_raised_again(book: Store) -> None:
    first = book.send(mismatched())
    again = book.send(mismatched(ts=R2))
    assert book.issues == book_issues(first, last=again)
    assert [row[0] for row in book.issue_rows().values()] == list(book_issues(first, last=again).values())
    assert book.events(after=first) == [checked_event(again, 6, BOOK_MISMATCHES, ts=R2)], "seen, not raised again"
    changed = book.send(mismatched(ts=R3, eth=1.25))
    eth = book_issues(first, eth=1.25)["ETHUSDT"]
    eth.last_seen_seq = changed  # still the issue opened at `first`, with what the exchange says now
    assert book.issues["ETHUSDT"] == eth
    assert book.issue_rows()[2][0] == eth
    assert book.events(after=again)[0] == mismatch_event(changed, "ETHUSDT", "qty_mismatch",
                                                         "store LONG 2, exchange LONG 1.25", ts=R3)
    assert book.samples("v7_store_reconcile_mismatches_total")[(("kind", "qty_mismatch"), ("policy", "warn"))] == 2.0


def test_agreeing_again_resolves_and_unlisted_symbols_keep_their_issue(book: Store) -> None:
    first = book.send(mismatched())
    seq = book.send(reported(ts=R2, ETHUSDT=("LONG", 2.0, 50.0, None)))  # only ETH known, and it agrees
    assert set(book.issues) == {"BTCUSDT", "SOLUSDT", "DOTUSDT"}, "a symbol not listed is unknown, not agreed"
    assert book.events(after=first) == [
        resolved_event(seq, "ETHUSDT", "qty_mismatch", "agreed", "executor", "store and exchange agree again", first,
                       ts=R2),
        checked_event(seq, 1, [], ts=R2)]
    assert book.issue_rows()[2][1:] == ("resolved", seq, "agreed", "executor")
    assert book.issue_rows()[1][1:] == ("open", None, None, None)
    assert book.store.state.last_report_seq == {"SIM/paper": seq}


def test_other_scopes_are_not_compared(book: Store) -> None:
    # LIVE/main holds BTC; a LIVE/other report listing BTC as flat agrees: it is another account.
    seq = book.send(ExchangePositionsReported(mode="LIVE", account="other", exchange_ok=True, ts=R1,
                                              symbols=["BTCUSDT"]))
    assert book.issues == {}
    assert book.events() == [{**checked_event(seq, 1, []), "mode": "LIVE", "account": "other"}]
    assert book.store.state.last_report_seq == {"LIVE/other": seq}
    live = book.send(ExchangePositionsReported(mode="LIVE", account="main", exchange_ok=True, ts=R1,
                                               symbols=["BTCUSDT", "ETHUSDT"]))
    assert list(book.store.state.issues) == [("LIVE", "main", "BTCUSDT")], "SIM's ETH is not LIVE's"
    assert book.store.state.last_report_seq == {"LIVE/other": seq, "LIVE/main": live}


# --- halt, and a policy changed between reports -----------------------------------------------------------------


def test_halt_names_the_action(tmp_path: Path) -> None:
    s = Store(tmp_path, "halt")
    s.send(*_opened("i-btc", "BTCUSDT", "BUY", 1.0, 100.0))
    seq = s.send(reported("BTCUSDT"))
    assert s.events(after=seq - 1) == [
        mismatch_event(seq, "BTCUSDT", "store_only", "store LONG 1, exchange flat", "halt"),
        checked_event(seq, 1, ["BTCUSDT:store_only"], "halt")]
    assert s.issues["BTCUSDT"].policy == "halt"
    assert s.samples("v7_store_reconcile_mismatches_total") == {(("kind", "store_only"), ("policy", "halt")): 1.0}
    s.store.close()


def test_a_halt_issue_stays_halt_and_a_changed_issue_takes_the_new_policy(book: Store) -> None:
    book.reopen("halt")
    first = book.send(mismatched())
    book.reopen("warn")
    changed = book.send(mismatched(ts=R2, eth=1.25))  # ETH changed: raised again, still halting
    assert book.issues["ETHUSDT"].policy == "halt"
    assert book.events(after=first)[0] == mismatch_event(changed, "ETHUSDT", "qty_mismatch",
                                                         "store LONG 2, exchange LONG 1.25", "halt", ts=R2)
    assert book.samples("v7_store_reconcile_mismatches_total") == {(("kind", "qty_mismatch"), ("policy", "warn")): 1.0}
    book.send(mismatched(ts=R3, eth=1.0))
    assert book.issues["ETHUSDT"].policy == "halt"
    assert {i.policy for i in book.issues.values()} == {"halt"}


def test_a_changed_issue_keeps_its_new_policy_across_a_restart(book: Store) -> None:
    first = book.send(mismatched())
    book.reopen("halt")
    book.send(mismatched(ts=R2, eth=1.25))
    assert (book.issues["ETHUSDT"].policy, book.issues["BTCUSDT"].policy) == ("halt", "warn")
    book.reopen("warn")  # the database holds what memory held: the scope is still halted
    assert (book.issues["ETHUSDT"].policy, book.issues["BTCUSDT"].policy) == ("halt", "warn")
    assert book.issues["ETHUSDT"].opened_seq == first


# --- adopt_exchange: two reports in a row that agree ------------------------------------------------------------


def test_adopt_exchange_adopts_what_two_reports_in_a_row_say(book: Store) -> None:
    book.reopen("adopt_exchange")
    first = book.send(mismatched())
    assert book.events(after=first - 1)[:4] == raised_events(first, "adopt_exchange")
    assert book.position("ETHUSDT").qty == 2.0  # type: ignore[union-attr]
    seq = book.send(mismatched(ts=R2))
    policy = "policy (executor)"
    confirmed = f"confirmed by the report at seq {seq}"
    assert book.events(after=first) == [
        {"event": "reconcile_close", "seq": seq, "ts": R2, **SIM, "symbol": "BTCUSDT", "position_id": "i-btc",
         "side": "LONG", "qty_before": 1.0, "qty_after": 0.0, "price": 103.0, "realized": 3.0,
         "decided_by": policy, "note": "exit price estimated from the last mark"},
        resolved_event(seq, "BTCUSDT", "store_only", "adopt_exchange", "policy", confirmed, first, R2),
        {"event": "reconcile_adjust", "seq": seq, "ts": R2, **SIM, "symbol": "ETHUSDT", "position_id": "i-eth",
         "side": "LONG", "qty_before": 2.0, "qty_after": 1.5, "price": 50.5, "decided_by": policy},
        resolved_event(seq, "ETHUSDT", "qty_mismatch", "adopt_exchange", "policy", confirmed, first, R2),
        {"event": "reconcile_open", "seq": seq, "ts": R2, **SIM, "symbol": "SOLUSDT",
         "position_id": f"adopted:SIM:paper:SOLUSDT:{seq}", "side": "SHORT", "qty_before": 0.0, "qty_after": 3.0,
         "price": 20.0, "decided_by": policy},
        resolved_event(seq, "SOLUSDT", "exchange_only", "adopt_exchange", "policy", confirmed, first, R2),
        {"event": "reconcile_close", "seq": seq, "ts": R2, **SIM, "symbol": "DOTUSDT", "position_id": "i-dot",
         "side": "SHORT", "qty_before": 2.0, "qty_after": 0.0, "price": 9.0, "realized": 2.0,
         "decided_by": policy, "note": "exit price estimated from the last mark"},
        {"event": "reconcile_open", "seq": seq, "ts": R2, **SIM, "symbol": "DOTUSDT",
         "position_id": f"adopted:SIM:paper:DOTUSDT:{seq}", "side": "LONG", "qty_before": 0.0, "qty_after": 2.0,
         "price": 9.5, "decided_by": policy},
        resolved_event(seq, "DOTUSDT", "side_mismatch", "adopt_exchange", "policy", confirmed, first, R2),
        checked_event(seq, 6, BOOK_MISMATCHES, "adopt_exchange", ts=R2)]
    assert book.issues == {}
    assert {r: row[1:] for r, row in book.issue_rows().items()} == dict.fromkeys(
        range(1, 5), ("resolved", seq, "adopt_exchange", "policy"))
    assert book.position("BTCUSDT") is None and book.position("BTCUSDT", "LIVE", "main") is not None
    eth = book.position("ETHUSDT")
    assert eth is not None
    assert (eth.qty, eth.entry_price, eth.peak_qty, eth.mark_price, eth.trade_min_price, eth.trade_max_price,
            eth.updated_seq, eth.updated_at) == (1.5, 50.5, 2.0, 51.0, 49.0, 51.0, seq, R2)
    sol = book.position("SOLUSDT")
    assert sol is not None
    assert (sol.side, sol.qty, sol.entry_price, sol.mark_price, sol.trade_min_price, sol.trade_max_price, sol.source,
            sol.opened_seq, sol.entry_time) == ("SHORT", 3.0, 20.0, 19.5, 19.5, 20.0, "reconcile", seq, R2)
    dot = book.position("DOTUSDT")
    assert dot is not None  # no mark reported: the new position's mark is its entry
    assert (dot.side, dot.qty, dot.entry_price, dot.mark_price, dot.trade_min_price, dot.trade_max_price) == (
        "LONG", 2.0, 9.5, 9.5, 9.5, 9.5)
    assert book.trades() == [("BTCUSDT", "LONG", 1.0, 100.0, 103.0, 3.0, "reconcile_adopt", seq),
                             ("DOTUSDT", "SHORT", 2.0, 10.0, 9.0, 2.0, "reconcile_adopt", seq)]
    # Adopted positions reach the database: a restart reads them back.
    book.reopen("adopt_exchange")
    assert book.position("SOLUSDT") == sol and book.position("BTCUSDT") is None
    assert book.position("ETHUSDT") == eth


def test_adopt_exchange_waits_for_two_reports_that_say_the_same(book: Store) -> None:
    book.reopen("adopt_exchange")
    first = book.send(reported(ETHUSDT=("LONG", 1.5, 50.5, 51.0)))
    changed = book.send(reported(ts=R2, ETHUSDT=("LONG", 3.0, 50.5, None)))  # not what the first said: raised again
    assert book.position("ETHUSDT").qty == 2.0  # type: ignore[union-attr]
    assert book.issues["ETHUSDT"].last_seen_seq == changed and book.issues["ETHUSDT"].opened_seq == first
    seq = book.send(reported(ts=R3, ETHUSDT=("LONG", 3.0, 50.75, None)))
    eth = book.position("ETHUSDT")
    assert eth is not None and book.issues == {}
    # No mark reported: the last one (49) stays; a larger size is the trade's new peak.
    assert (eth.qty, eth.entry_price, eth.peak_qty, eth.mark_price, eth.trade_max_price) == (
        3.0, 50.75, 3.0, 49.0, 50.0)
    assert book.events(after=changed)[0]["event"] == "reconcile_adjust"
    assert book.events(after=changed)[0]["seq"] == seq


def test_the_next_report_agreeing_resolves_without_adopting(book: Store) -> None:
    book.reopen("adopt_exchange")
    first = book.send(reported(ETHUSDT=("LONG", 1.5, 50.5, 51.0)))
    seq = book.send(reported(ts=R2, ETHUSDT=("LONG", 2.0, 50.0, 51.0)))
    assert book.events(after=first) == [
        resolved_event(seq, "ETHUSDT", "qty_mismatch", "agreed", "executor", "store and exchange agree again", first,
                       ts=R2),
        checked_event(seq, 1, [], "adopt_exchange", ts=R2)]
    assert book.position("ETHUSDT").mark_price == 49.0  # type: ignore[union-attr]


# --- settled symbols only -------------------------------------------------------------------------------------


def test_symbols_with_an_order_in_flight_are_left_with_their_issue(book: Store) -> None:
    first = book.send(mismatched())
    # BTC's and SOL's orders are working in SIM/paper; DOT's in LIVE/main (another scope); XRP's is not reported on.
    book.send(intent("i2-btc", "BTCUSDT", "BUY", 1.0), intent("i2-sol", "SOLUSDT", "SELL", 1.0),
              intent("l-dot", "DOTUSDT", "BUY", 1.0, mode="LIVE", account="main"),
              intent("i-xrp", "XRPUSDT", "BUY", 1.0))
    # The exchange agrees on BTC and SOL now, but their answers may predate the orders: not compared.
    seq = book.send(reported("BTCUSDT", ts=R2, SOLUSDT=("SHORT", 3.0, 20.0, 19.5), ETHUSDT=("LONG", 2.0, 50.0, None),
                             DOTUSDT=("LONG", 2.0, 9.5, None)))
    issues = book_issues(first)
    assert book.issues == {"BTCUSDT": issues["BTCUSDT"], "SOLUSDT": issues["SOLUSDT"],
                           "DOTUSDT": book_issues(first, last=seq)["DOTUSDT"]}
    assert book.events(after=seq - 1) == [
        resolved_event(seq, "ETHUSDT", "qty_mismatch", "agreed", "executor", "store and exchange agree again", first,
                       ts=R2),
        checked_event(seq, 2, ["DOTUSDT:side_mismatch"], unsettled=["BTCUSDT", "SOLUSDT"], ts=R2)]
    # BTC's order done: compared again (and still flat there).
    book.send(done("i2-btc", "BTCUSDT", "BUY", 1.0))
    later = book.send(reported("BTCUSDT", ts=R3))
    assert book.issues["BTCUSDT"] == book_issues(first, last=later)["BTCUSDT"]
    assert book.events(after=later - 1) == [checked_event(later, 1, ["BTCUSDT:store_only"], ts=R3)]


def test_a_fill_committed_after_the_exchange_was_read_leaves_its_symbol(book: Store) -> None:
    first = book.send(mismatched())
    # BTC filled again after R2 (the report's reading), ETH exactly at R2, both orders done.
    book.send(*_opened_at("i2-btc", "BTCUSDT", R2 + timedelta(microseconds=1)), *_opened_at("i2-eth", "ETHUSDT", R2))
    seq = book.send(reported("BTCUSDT", ts=R2, ETHUSDT=("LONG", 3.0, 50.0, None)))
    assert book.events(after=seq - 1) == [
        resolved_event(seq, "ETHUSDT", "qty_mismatch", "agreed", "executor", "store and exchange agree again", first,
                       ts=R2),
        checked_event(seq, 1, [], unsettled=["BTCUSDT"], ts=R2)]
    assert book.issues["BTCUSDT"] == book_issues(first)["BTCUSDT"], "kept as it was, not seen again"


def _opened_at(intent_id: str, symbol: str, ts: datetime) -> list[Message]:
    return [intent(intent_id, symbol, "BUY", 1.0), fill(f"t-{intent_id}", intent_id, symbol, "BUY", 1.0, 100.0, ts=ts),
            done(intent_id, symbol, "BUY", 1.0)]


# --- operator resolutions -------------------------------------------------------------------------------------


def resolution(symbol: str, action: str, operator: str = "alice", note: str = "", ts: datetime = R3
               ) -> ResolveMismatch:
    return ResolveMismatch(**SIM, symbol=symbol, action=action, operator=operator, note=note, ts=ts)  # type: ignore[arg-type]


def test_operator_resolutions(book: Store) -> None:
    first = book.send(mismatched(eth=0.5))  # a size under one unit is exchange data too
    seq = book.send(resolution("XRPUSDT", "keep_store", note="n1"), src="cli")
    assert book.events(after=first) == [
        {"event": "resolution_ignored", "seq": seq, "ts": R3, **SIM, "symbol": "XRPUSDT", "action": "keep_store",
         "operator": "alice", "note": "n1", "reason": "no open issue for this symbol"}]
    keep = book.send(resolution("BTCUSDT", "keep_store", note="exchange glitch"), src="cli")
    assert book.events(after=seq) == [
        resolved_event(keep, "BTCUSDT", "store_only", "keep_store", "alice", "exchange glitch", first, R3)]
    assert book.position("BTCUSDT") is not None and book.position("BTCUSDT").qty == 1.0  # type: ignore[union-attr]
    assert book.issue_rows()[1][1:] == ("resolved", keep, "keep_store", "alice")
    sol = book.send(resolution("SOLUSDT", "adopt_exchange", "bob"), src="cli")
    eth = book.send(resolution("ETHUSDT", "adopt_exchange", "bob"), src="cli")
    assert book.events(after=keep) == [
        {"event": "reconcile_open", "seq": sol, "ts": R3, **SIM, "symbol": "SOLUSDT",
         "position_id": f"adopted:SIM:paper:SOLUSDT:{sol}", "side": "SHORT", "qty_before": 0.0, "qty_after": 3.0,
         "price": 20.0, "decided_by": "operator bob"},
        resolved_event(sol, "SOLUSDT", "exchange_only", "adopt_exchange", "bob", "", first, R3),
        {"event": "reconcile_adjust", "seq": eth, "ts": R3, **SIM, "symbol": "ETHUSDT", "position_id": "i-eth",
         "side": "LONG", "qty_before": 2.0, "qty_after": 0.5, "price": 50.5, "decided_by": "operator bob"},
        resolved_event(eth, "ETHUSDT", "qty_mismatch", "adopt_exchange", "bob", "", first, R3)]
    adopted = book.position("SOLUSDT")
    assert adopted is not None and (adopted.qty, adopted.mark_price) == (3.0, 19.5)
    assert book.position("ETHUSDT").mark_price == 51.0  # type: ignore[union-attr]
    assert set(book.issues) == {"DOTUSDT"}
    assert book.store.state.last_report_seq == {"SIM/paper": first}


def test_operator_adopting_a_flat_exchange_closes_the_store_position(book: Store) -> None:
    first = book.send(mismatched())
    seq = book.send(resolution("BTCUSDT", "adopt_exchange", "bob", "flat there"), src="cli")
    assert book.events(after=first) == [
        {"event": "reconcile_close", "seq": seq, "ts": R3, **SIM, "symbol": "BTCUSDT", "position_id": "i-btc",
         "side": "LONG", "qty_before": 1.0, "qty_after": 0.0, "price": 103.0, "realized": 3.0,
         "decided_by": "operator bob", "note": "exit price estimated from the last mark"},
        resolved_event(seq, "BTCUSDT", "store_only", "adopt_exchange", "bob", "flat there", first, R3)]
    assert book.position("BTCUSDT") is None


def test_closing_by_adoption_completes_the_trade_of_a_reduced_position(book: Store) -> None:
    book.send(*_closed_part("i-cut", "BTCUSDT", 0.5, 110.0), marks(BTCUSDT=104.0))  # 5.0 realized on half
    book.send(reported("BTCUSDT"))
    seq = book.send(resolution("BTCUSDT", "adopt_exchange", "bob"), src="cli")
    # The trade: both units, exits at 110 and (estimated) 104, 5 + 2 gross.
    assert book.trades() == [("BTCUSDT", "LONG", 1.0, 100.0, 107.0, 7.0, "reconcile_adopt", seq)]


def _closed_part(intent_id: str, symbol: str, qty: float, price: float) -> list[Message]:
    return [intent(intent_id, symbol, "SELL", qty, reduce_only=True),
            fill(f"t-{intent_id}", intent_id, symbol, "SELL", qty, price, reduce_only=True, ts=T0),
            done(intent_id, symbol, "SELL", qty)]


def test_a_fill_anomaly_cannot_be_resolved_from_exchange_data(book: Store) -> None:
    # A reduce-only sell with nothing to reduce: an anomaly raised as an issue with no exchange data.
    first = book.send(fill("t-x", "i-x", "XRPUSDT", "SELL", 1.0, 0.5, reduce_only=True, ts=T0))
    assert book.issues["XRPUSDT"].kind == "fill_anomaly"
    seq = book.send(resolution("XRPUSDT", "adopt_exchange"), src="cli")
    assert book.events(after=first) == [
        {"event": "resolution_refused", "seq": seq, "ts": R3, **SIM, "symbol": "XRPUSDT", "action": "adopt_exchange",
         "operator": "alice",
         "reason": "this issue carries no exchange data; wait for a reconciliation report or use keep_store"}]
    assert "XRPUSDT" in book.issues
    keep = book.send(resolution("XRPUSDT", "keep_store"), src="cli")
    assert book.events(after=seq)[0]["resolution"] == "keep_store" and book.events(after=seq)[0]["seq"] == keep
    assert book.issues == {}


# --- compare.py: which symbols disagree, and how ----------------------------------------------------------------


def held(symbol: str, side: str, qty: float) -> Position:
    return open_position(**SIM, symbol=symbol, side=side, qty=qty, price=100.0, when=T0, seq=1,
                         info=EntryInfo(position_id=f"p-{symbol}"))


TOL = 2.0 ** -7  # exact in binary: tolerance x size is exactly the difference at the boundary
AT = 2.0 - 2.0 ** -6  # 2 and AT differ by exactly TOL x 2
OVER = AT - 2.0 ** -20


@pytest.mark.parametrize(("store_qty", "exchange_qty", "kind"), [
    (AT, 2.0, None),  # exactly the tolerance of the larger size
    (2.0, AT, None),  # either side larger
    (OVER, 2.0, "qty_mismatch"),  # just over
    (2.0, OVER, "qty_mismatch"),
    (2.0, 2.0, None),
])
def test_qty_tolerance_is_relative_to_the_larger_size(store_qty: float, exchange_qty: float, kind: str | None) -> None:
    report = reported(BTCUSDT=("LONG", exchange_qty, 100.0, None))
    store = {"BTCUSDT": held("BTCUSDT", "LONG", store_qty)}
    mismatches, agreed = compare(store, report, TOL)
    assert [m.kind for m in mismatches] == ([kind] if kind else [])
    assert agreed == ([] if kind else ["BTCUSDT"])


def test_compare_each_kind_in_report_order() -> None:
    store = {s: held(s, side, q) for s, side, q in (("BTCUSDT", "LONG", 1.0), ("ETHUSDT", "SHORT", 2.0),
                                                    ("DOTUSDT", "LONG", 0.5), ("ADAUSDT", "SHORT", 4.0),
                                                    ("XLMUSDT", "LONG", 1.0))}
    report = reported("XRPUSDT", "BTCUSDT", "XRPUSDT", "BTCUSDT", ETHUSDT=("LONG", 2.0, 1.0, None),
                      SOLUSDT=("SHORT", 0.25, 1.0, None), DOTUSDT=("LONG", 0.75, 1.0, None),
                      ADAUSDT=("SHORT", 4.0, 3.0, 2.0))
    mismatches, agreed = compare(store, report, 0.0)
    ex = {p.symbol: p for p in report.positions}
    # Listed twice, compared once; XLM is not listed: unknown, so neither agreed nor a mismatch.
    assert mismatches == [
        Mismatch(symbol="BTCUSDT", kind="store_only", store=store["BTCUSDT"], exchange=None),
        Mismatch(symbol="ETHUSDT", kind="side_mismatch", store=store["ETHUSDT"], exchange=ex["ETHUSDT"]),
        Mismatch(symbol="SOLUSDT", kind="exchange_only", store=None, exchange=ex["SOLUSDT"]),
        Mismatch(symbol="DOTUSDT", kind="qty_mismatch", store=store["DOTUSDT"], exchange=ex["DOTUSDT"])]
    assert agreed == ["XRPUSDT", "ADAUSDT"], "entry prices are not compared"
    assert [m.detail() for m in mismatches] == [
        "store LONG 1, exchange flat", "store SHORT 2, exchange LONG 2", "store flat, exchange SHORT 0.25",
        "store LONG 0.5, exchange LONG 0.75"]
