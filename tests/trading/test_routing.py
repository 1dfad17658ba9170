"""The routing engine against the real paper exchange engine: maker-first, taker fallback,
TWAP slices, stop-loss taker, and a resume that never double-places.

The engine is driven the way the router actor drives it: by the paper exchange's own account
and market streams (delivered after the call that caused them, as they arrive on a socket)
and by `wake()` at the deadline it asks for. Nothing polls the exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from actors.router.quality import Quality
from actors.router.routing import RouteEngine
from actors.router.work import Work
from bus.messages import utc_now
from config.strategy import RouterConfig
from exchange.adapter import ExchangeFill, Order
from exchange.streams import BookTicked, OrderChanged, TradeExecuted


@dataclass
class Recorder:
    """Where the engine's reports go (the actor publishes them; here they are kept)."""

    events: list[tuple[str, str]] = field(default_factory=list)
    fills: list[ExchangeFill] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    done: dict[str, tuple[str, float, str]] = field(default_factory=dict)

    def order_event(self, work: Work, order: Order) -> None:
        self.orders.append(order)

    def intent_done(self, work: Work, last: Order | None, status: str, filled: float, reason: str) -> None:
        self.done[work.intent_id] = (status, filled, reason)

    def fill(self, work: Work, fill: ExchangeFill, arrival_mid: float | None) -> None:
        self.fills.append(fill)

    def router_event(self, work: Work, action: str, detail: str = "", price: float | None = None,
                     qty: float | None = None) -> None:
        self.events.append((action, detail))


def work(intent_id: str, side: str, qty: float, symbol: str = "ETHUSDT", **kw: object) -> Work:
    base = {"intent_id": intent_id, "mode": "SIM", "account": "paper", "symbol": symbol, "side": side, "qty": qty,
            "reduce_only": False, "purpose": "entry", "position_id": "p-1", "arrival_mid": None,
            "expires_at": utc_now() + timedelta(minutes=10), "taker_only": False}
    return Work(**{**base, **kw})  # type: ignore[arg-type]


class Streams:
    """The paper exchange's pushed events, queued as a socket would hold them."""

    def __init__(self) -> None:
        self.queue: list[object] = []
        self.delivered = 0

    def market(self, event: object) -> None:
        self.queue.append(event)

    def account(self, event: object) -> None:
        self.queue.append(event)

    def deliver(self, engine: RouteEngine) -> None:
        while self.queue:
            event = self.queue.pop(0)
            self.delivered += 1
            if isinstance(event, BookTicked):
                engine.on_top(event.top)
            elif isinstance(event, TradeExecuted):
                engine.on_fill(event.fill)
            elif isinstance(event, OrderChanged):
                engine.on_order(event.order)


def run(engine: RouteEngine, ex, clock, seconds: float, step_s: float = 0.25) -> None:
    streams: Streams = ex.sink
    streams.deliver(engine)
    for _ in range(int(seconds / step_s)):
        clock.now += step_s
        ex.tick()
        streams.deliver(engine)
        due = engine.next_deadline()
        if due is not None and due <= clock.now:
            engine.wake()
            streams.deliver(engine)
        if not engine.jobs:
            return


def attached(ex):
    ex.attach(Streams())
    return ex


@pytest.fixture
def setup(open_exchange):
    ex, clock = open_exchange(touch_fill_rate_per_s=0.8)
    attached(ex)
    rec = Recorder()
    config = RouterConfig(reprice_after_s=1.0, max_reprices=2, twap_threshold_notional=1500.0, twap_slices=3,
                          twap_interval_s=0.5)
    engine = RouteEngine(ex, config, Quality(200), rec, clock=clock)
    return ex, clock, rec, engine


def test_maker_first_completes_and_reports_every_fill(setup) -> None:
    ex, clock, rec, engine = setup
    engine.submit(work("en-a", "BUY", 0.3), lot=0.001, notional=1000.0)
    run(engine, ex, clock, 60)
    status, filled, _reason = rec.done["en-a"]
    assert status == "FILLED" and filled == pytest.approx(0.3)
    assert sum(f.qty for f in rec.fills) == pytest.approx(0.3)
    assert {f.trade_id for f in rec.fills} == {f.trade_id for f in ex.fetch_fills()}
    actions = [a for a, _d in rec.events]
    assert actions[0] == "route_start" and "post_maker" in actions and actions[-1] == "complete"
    assert ex.fetch_positions()[0].qty == pytest.approx(0.3)
    # Every child order is "<intent>.<n>" and none rests after the intent is done.
    assert all(o.client_order_id.startswith("en-a.") for o in ex.fetch_orders("ETHUSDT"))
    assert ex.fetch_orders("ETHUSDT", open_only=True) == []


def test_unfilled_maker_falls_back_to_taker(open_exchange) -> None:
    # A market too quiet to reach the order and no fills at the touch: the maker never fills.
    ex, clock = open_exchange(touch_fill_rate_per_s=0.0, instruments={"ETHUSDT": {"annual_vol": 0.001}})
    attached(ex)
    rec = Recorder()
    engine = RouteEngine(ex, RouterConfig(reprice_after_s=1.0, max_reprices=2), Quality(200), rec, clock=clock)
    engine.submit(work("en-b", "SELL", 0.2), lot=0.001, notional=640.0)
    run(engine, ex, clock, 30)
    assert rec.done["en-b"][0] == "FILLED"
    actions = [a for a, _d in rec.events]
    assert actions.count("post_maker") == 3 and actions.count("reprice") == 2
    assert actions.index("taker_fallback") > actions.index("reprice")
    assert [f.liquidity for f in rec.fills] == ["taker"]
    assert engine.quality.maker_fill_share == 0.0


def test_twap_slices_large_intents(setup) -> None:
    ex, clock, rec, engine = setup
    engine.submit(work("en-c", "BUY", 0.9), lot=0.001, notional=2900.0)
    assert engine.jobs["en-c"].slices == 3
    run(engine, ex, clock, 120)
    assert rec.done["en-c"][0] == "FILLED"
    slices = [d for a, d in rec.events if a == "twap_slice"]
    assert slices == ["slice 1/3", "slice 2/3", "slice 3/3"]
    assert engine.quality.slices_sent == 3


def test_stop_loss_exit_is_taker_and_supersedes_the_entry(setup) -> None:
    ex, clock, rec, engine = setup
    engine.submit(work("en-d", "BUY", 0.5), lot=0.001, notional=1600.0)
    ex.sink.deliver(engine)  # the entry's first maker order rests
    filled_before = ex.fetch_positions()[0].qty if ex.fetch_positions() else 0.0
    engine.submit(work("ex-d", "SELL", 0.5, purpose="exit_sl", reduce_only=True, taker_only=True, expires_at=None),
                  lot=0.001, notional=1600.0)
    assert rec.done["en-d"][0] == "CANCELED" and "superseded_by_exit" in rec.done["en-d"][2]
    run(engine, ex, clock, 10)
    if filled_before > 0:
        assert rec.done["ex-d"][0] == "FILLED"
        assert all(f.liquidity == "taker" for f in rec.fills if f.client_order_id.startswith("ex-d."))
    else:
        assert rec.done["ex-d"][0] == "REJECTED"  # nothing to reduce
    assert ex.fetch_positions() == []


def test_resume_after_restart_never_double_places(setup, open_exchange) -> None:
    ex, clock, rec, engine = setup
    engine.submit(work("en-e", "BUY", 0.6), lot=0.001, notional=1900.0)
    run(engine, ex, clock, 3)  # part of the way: some slices filled, a child order may be resting
    filled_then = sum(f.qty for f in rec.fills)
    orders_then = len(ex.fetch_orders("ETHUSDT"))
    # A new router process: knows nothing but the pending intent, finds the orders by prefix.
    rec2 = Recorder()
    engine2 = RouteEngine(ex, engine.config, Quality(200), rec2, clock=clock)
    engine2.submit(work("en-e", "BUY", 0.6), resume=True, lot=0.001, notional=1900.0)
    run(engine2, ex, clock, 120)
    assert rec2.done["en-e"][0] == "FILLED"
    position = ex.fetch_positions()[0]
    assert position.qty == pytest.approx(0.6)  # exactly the intent, not 0.6 + what was filled before
    assert ex.fetch_orders("ETHUSDT", open_only=True) == []
    resumed_ids = [o.client_order_id for o in ex.fetch_orders("ETHUSDT")]
    assert len(resumed_ids) == len(set(resumed_ids)) and len(resumed_ids) >= orders_then
    # Fills found again on resume are re-reported with the same trade ids (consumers de-duplicate).
    assert {f.trade_id for f in rec2.fills} == {f.trade_id for f in ex.fetch_fills()}
    assert filled_then <= 0.6


def test_a_maker_fill_moves_the_job_on_the_event_not_a_later_tick(setup) -> None:
    """The fill of a resting maker order and the order's FILLED status arrive on the account
    stream; the job finishes (or places its next slice) while handling them, with no wake."""
    ex, clock, rec, engine = setup
    streams: Streams = ex.sink
    engine.submit(work("en-f", "BUY", 0.1), lot=0.001, notional=300.0)
    streams.deliver(engine)
    assert engine.jobs["en-f"].active is not None  # the first order left at once
    deadline = engine.next_deadline()
    for _ in range(400):  # the market moves; the router is never woken
        clock.now += 0.05
        if deadline is not None and clock.now >= deadline:
            clock.now = deadline - 0.01  # stay inside the reprice window: only events can move the job
        ex.tick()
        streams.deliver(engine)
        if "en-f" in rec.done:
            break
    assert rec.done["en-f"][0] == "FILLED"
    assert [f.liquidity for f in rec.fills] == ["maker"] * len(rec.fills)


def test_every_fill_is_reported_once_whether_answer_or_stream_shows_it_first(setup) -> None:
    ex, _clock, rec, engine = setup
    engine.submit(work("ex-g", "BUY", 0.2, taker_only=True), lot=0.001, notional=600.0)
    # The taker order's answer carried its fills; the stream now repeats them.
    streams: Streams = ex.sink
    assert streams.queue and any(isinstance(e, TradeExecuted) for e in streams.queue)
    reported = len(rec.fills)
    streams.deliver(engine)
    assert len(rec.fills) == reported > 0
    assert len({f.trade_id for f in rec.fills}) == len(rec.fills)
    assert rec.done["ex-g"][0] == "FILLED"
