"""The routing engine: one `Job` per intent, moved on by events as they arrive.

What moves a job: the intent itself (`submit`: the first order leaves at once), the exchange's
account stream (`on_order`: an order's status changed; `on_fill`: a trade), and deadlines
(`wake`: a maker order unfilled for `reprice_after_s`, the pause between TWAP slices, a retry
back-off, the intent's own deadline). `next_deadline()` says when to call `wake` next; nothing
polls the exchange on a timer. `reconcile()` reads every working order back over the request
API: after the stream was resynced, and as a slow safety net.

Policy (per intent):
- maker-first: a post-only LIMIT at the touch (bid for a BUY, ask for a SELL); unfilled after
  `reprice_after_s` it is cancelled and re-posted at the new touch, up to `max_reprices` times,
  then the rest goes as a MARKET order (taker fallback). A post-only order that would cross
  is a reprice, not a reject.
- TWAP: an intent whose notional exceeds `twap_threshold_notional` is cut into `twap_slices`
  equal slices, each routed maker-first, `twap_interval_s` apart.
- stop-loss exits go straight to taker (`sl_taker`); an exit for a symbol cancels any entry
  still working on it.
- the intent's deadline (`expires_at`) ends an entry EXPIRED; exchange rejects are retried
  (`overloaded`) or end it REJECTED; a reduce-only order with nothing left to reduce ends it.

Child orders have client order id "<intent_id>.<n>", so after a restart `resume` finds every
order the intent placed, counts its fills, cancels what still rests and continues with the
remainder: a resume never double-places. Fills found again on resume, or seen both in an
answer and on the stream, are reported once per trade id (and consumers de-duplicate too).
An order's status only moves forward: a stream event older than what an answer already
showed is ignored.

The last event of an intent is an OrderUpdated with `intent_done=True` whose status is the
intent's outcome and whose qty/filled_qty are the intent's totals.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from actors.router.quality import FillSample, Quality, slippage_bps
from actors.router.work import Work
from bus.messages import utc_now
from config.strategy import RouterConfig
from domain.vocabulary import TERMINAL_ORDER_STATUSES
from exchange.adapter import BookTop, ExchangeAdapter, ExchangeFill, Order, OrderRequest
from exchange.errors import BadRequest, ExchangeUnavailable, OrderNotFound, OrderRejected
from exchange.ticks import floor_to

log = logging.getLogger(__name__)

RETRYABLE_REJECTS = frozenset({"overloaded"})
FINISHED_KEPT = 10_000
MAX_JOB_ERRORS = 10
UNKNOWN_OUTCOME_READ_S = 1.0  # an order placed without an answer is looked up after this


class Emitter(Protocol):
    def order_event(self, work: Work, order: Order) -> None: ...

    def intent_done(self, work: Work, last: Order | None, status: str, filled: float, reason: str) -> None: ...

    def fill(self, work: Work, fill: ExchangeFill, arrival_mid: float | None) -> None: ...

    def router_event(self, work: Work, action: str, detail: str = "", price: float | None = None,
                     qty: float | None = None) -> None: ...


_STATUS_RANK = {"NEW": 0, "PARTIALLY_FILLED": 1, **dict.fromkeys(TERMINAL_ORDER_STATUSES, 2)}


def _newer(known: Order | None, incoming: Order) -> bool:
    """True if `incoming` says more than `known` (events and answers can arrive in either order)."""
    if known is None:
        return True
    if _STATUS_RANK[known.status] == 2:
        return False  # terminal is final
    return (_STATUS_RANK[incoming.status], incoming.filled_qty) > (_STATUS_RANK[known.status], known.filled_qty)


@dataclass
class Active:
    request: OrderRequest
    placed_at: float
    order: Order | None = None  # None: the place call's outcome is unknown
    cancel_sent: bool = False


@dataclass
class Job:
    work: Work
    lot: float
    slices: int
    resume: bool = False
    filled: float = 0.0
    child_seq: int = 0
    slice_no: int = 0
    attempt: int = 0
    retries: int = 0
    errors: int = 0
    next_at: float = 0.0
    paused: bool = False  # the pause between TWAP slices has been taken
    arrival_mid: float | None = None
    active: Active | None = None
    last_order: Order | None = None
    seen: set[str] = field(default_factory=set)  # trade ids reported
    orders: dict[str, Order] = field(default_factory=dict)  # the newest state of each child order

    @property
    def remaining(self) -> float:
        return max(0.0, self.work.qty - self.filled)

    def slice_target(self) -> float:
        """Cumulative quantity the current slice is done at."""
        if self.slices <= 1 or self.slice_no >= self.slices:
            return self.work.qty
        return min(self.work.qty, self.work.qty * self.slice_no / self.slices)


class RouteEngine:
    def __init__(self, exchange: ExchangeAdapter, config: RouterConfig, quality: Quality, emit: Emitter,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.exchange = exchange
        self.config = config
        self.quality = quality
        self.emit = emit
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.finished: OrderedDict[str, None] = OrderedDict()
        self.tops: dict[str, BookTop] = {}

    # --- intake --------------------------------------------------------------------------------

    def knows(self, intent_id: str) -> bool:
        return intent_id in self.jobs or intent_id in self.finished

    def submit(self, work: Work, *, resume: bool = False, lot: float, notional: float | None) -> bool:
        """Take an intent and act on it at once. False if it is already known."""
        if self.knows(work.intent_id):
            return False
        if work.is_exit:
            for other in list(self.jobs.values()):
                if other.work.symbol == work.symbol and not other.work.is_exit:
                    self._guard(other, lambda o=other: self._cancel_active(o))
                    self._finish(other, "CANCELED", "superseded_by_exit")
        twap = notional is not None and notional > self.config.twap_threshold_notional and not work.taker_only
        job = Job(work, lot=lot, slices=self.config.twap_slices if twap else 1, resume=resume,
                  arrival_mid=work.arrival_mid)
        self.jobs[work.intent_id] = job
        if not resume:
            how = "taker" if work.taker_only or not self.config.maker_first else "maker-first"
            if job.slices > 1:
                how += f", TWAP {job.slices} slices"
            self.emit.router_event(work, "route_start", f"{work.purpose} {how}", qty=work.qty)
        self._step(job)
        return True

    def refuse(self, work: Work, reason: str, status: str = "REJECTED") -> None:
        """Finish an intent that is not to be routed at all (unknown symbol; entries while halted)."""
        if self.knows(work.intent_id):
            return
        job = Job(work, lot=0.0, slices=1)
        self.jobs[work.intent_id] = job
        self._finish(job, status, reason)

    def cancel_entries(self, reason: str) -> None:
        """End every entry still working (its resting order cancelled); exits go on."""
        for job in [j for j in self.jobs.values() if not j.work.is_exit]:
            self._guard(job, lambda j=job: self._cancel_active(j))
            self._finish(job, "CANCELED", reason)

    # --- events --------------------------------------------------------------------------------

    def on_top(self, top: BookTop) -> None:
        self.tops[top.symbol] = top

    def _job_of(self, client_order_id: str) -> Job | None:
        return self.jobs.get(client_order_id.rsplit(".", 1)[0])

    def on_fill(self, fill: ExchangeFill) -> None:
        """A trade of one of our orders (account stream)."""
        job = self._job_of(fill.client_order_id)
        if job is not None:
            self._absorb_fill(job, fill)

    def on_order(self, order: Order) -> None:
        """An order of ours changed (account stream). A terminal one lets its job move on."""
        job = self._job_of(order.client_order_id)
        if job is None:
            return
        active = job.active
        if active is None or active.request.client_order_id != order.client_order_id:
            self._absorb_status(job, order)  # an older child order: its status still goes on record
            return
        if active.order is None:
            active.order = order  # the place call's answer is still on its way: the order exists
            self.quality.placed()
        if self._absorb_status(job, order):
            active.order = order
        if not active.order.is_open:
            self._step(job)

    def wake(self) -> None:
        """Move on every job whose deadline has passed (reprice, TWAP pause, retry, expiry)."""
        now = self.clock()
        for job in list(self.jobs.values()):
            due = self._deadline(job)
            if due is not None and due <= now and job.work.intent_id in self.jobs:
                self._step(job)

    def next_deadline(self) -> float | None:
        """The clock time the next `wake` is needed at (None: nothing is waiting on a clock)."""
        deadlines = [d for j in self.jobs.values() if (d := self._deadline(j)) is not None]
        return min(deadlines) if deadlines else None

    def reconcile(self) -> None:
        """Read every working order back from the exchange (after a stream resync; a safety net)."""
        for job in list(self.jobs.values()):
            if job.active is not None and job.work.intent_id in self.jobs:
                self._guard(job, lambda j=job: self._read_back(j))

    def _deadline(self, job: Job) -> float | None:
        deadlines: list[float] = []
        if job.work.expires_at is not None:
            deadlines.append(self.clock() + max(0.0, (job.work.expires_at - utc_now()).total_seconds()))
        active = job.active
        if active is not None and active.order is None:
            deadlines.append(active.placed_at + UNKNOWN_OUTCOME_READ_S)  # read the order back: never place twice
        elif active is not None and active.order is not None and active.order.is_open and not active.cancel_sent:
            if active.request.order_type == "LIMIT":
                deadlines.append(active.placed_at + self.config.reprice_after_s)
        elif active is None:
            deadlines.append(job.next_at)  # a TWAP pause or a retry back-off (in the past: due now)
        return min(deadlines) if deadlines else None

    # --- moving a job on -----------------------------------------------------------------------

    def _guard(self, job: Job, fn: Callable[[], None]) -> None:
        """Run one action of a job; the exchange not answering propagates (state unknown: retried)."""
        try:
            fn()
            job.errors = 0
        except ExchangeUnavailable:
            raise
        except BadRequest as exc:
            self._finish(job, "REJECTED", f"{exc.code}: {exc.detail}")
        except Exception:
            job.errors += 1
            log.exception("routing %s failed (%d in a row)", job.work.intent_id, job.errors)
            if job.errors >= MAX_JOB_ERRORS:
                self._finish(job, "REJECTED", "internal routing error")

    def _step(self, job: Job) -> None:
        if job.work.intent_id in self.jobs:
            self._guard(job, lambda: self._advance(job))

    def _advance(self, job: Job) -> None:
        if job.resume:
            self._resume(job)
            job.resume = False
        if job.active is not None and not self._active_done(job):
            return
        if job.work.intent_id not in self.jobs:
            return
        if job.remaining < job.lot / 2:
            self._finish(job, "FILLED", "complete")
            return
        if job.work.expires_at is not None and utc_now() >= job.work.expires_at:
            self._finish(job, "EXPIRED", "routing deadline passed")
            return
        if self.clock() < job.next_at:
            return
        if job.slice_no == 0 or job.filled >= job.slice_target() - job.lot / 2:
            if job.slice_no > 0 and job.slices > 1 and not job.paused:
                job.paused = True
                job.next_at = self.clock() + self.config.twap_interval_s  # pause between slices
                return
            job.paused = False
            job.slice_no += 1
            job.attempt = 0
            if job.slices > 1:
                self.quality.slices_sent += 1
                self.emit.router_event(job.work, "twap_slice", f"slice {job.slice_no}/{job.slices}",
                                       qty=job.slice_target() - job.filled)
        self._place(job)

    def top(self, symbol: str) -> BookTop:
        top = self.tops.get(symbol)
        if top is None:  # before the market stream's first tick for this symbol
            top = self.exchange.fetch_tops([symbol])[symbol]
            self.tops[symbol] = top
        return top

    def _place(self, job: Job) -> None:
        work = job.work
        qty = floor_to(job.slice_target() - job.filled, job.lot)
        if qty < job.lot / 2:
            qty = floor_to(job.remaining, job.lot)
        if qty < job.lot / 2:
            self._finish(job, "FILLED", "complete")
            return
        top = self.top(work.symbol)
        if job.arrival_mid is None:
            job.arrival_mid = top.mid
        taker = work.taker_only or not self.config.maker_first or job.attempt > self.config.max_reprices
        job.child_seq += 1
        cid = f"{work.intent_id}.{job.child_seq}"
        if taker:
            request = OrderRequest(client_order_id=cid, symbol=work.symbol, side=work.side,
                                   order_type="MARKET", qty=qty, reduce_only=work.reduce_only)
        else:
            price = top.bid if work.side == "BUY" else top.ask
            request = OrderRequest(client_order_id=cid, symbol=work.symbol, side=work.side,
                                   order_type="LIMIT", qty=qty, price=price, post_only=True,
                                   reduce_only=work.reduce_only)
        job.active = Active(request, placed_at=self.clock())
        try:
            order = self.exchange.place_order(request)
        except OrderRejected as exc:
            job.active = None
            self._on_reject(job, exc)
            return
        if job.active is None or job.active.request is not request:
            return  # finished meanwhile
        if job.active.order is None:
            self.quality.placed()
        job.active.order = order
        if taker and not work.taker_only and self.config.maker_first:
            self.emit.router_event(work, "taker_fallback", f"after {job.attempt} maker attempts", qty=qty)
        elif not taker:
            self.emit.router_event(work, "post_maker", f"attempt {job.attempt + 1}", price=request.price, qty=qty)
        self._absorb(job, order)
        if not order.is_open:
            self._advance(job)  # a taker order is done at once: the rest goes now

    def _on_reject(self, job: Job, exc: OrderRejected) -> None:
        if exc.code == "post_only_would_cross":
            job.attempt += 1
            self.emit.router_event(job.work, "reprice", "post-only would have crossed; book moved")
            self._advance(job)
            return
        self.quality.rejected()
        self.emit.router_event(job.work, "reject", f"{exc.code}: {exc.detail}"[:2000])
        if exc.code == "reduce_only_rejected":
            self._finish(job, "FILLED" if job.filled > 0 else "REJECTED", "no position left to reduce")
        elif exc.code in RETRYABLE_REJECTS and job.retries < self.config.max_place_retries:
            job.retries += 1
            job.next_at = self.clock() + 0.5 * job.retries
        else:
            self._finish(job, "REJECTED", f"{exc.code}: {exc.detail}")

    def _active_done(self, job: Job) -> bool:
        """Whether the job's working order is out of the way; cancels it when its time is up."""
        active = job.active
        assert active is not None
        if active.order is None:
            self._read_back(job)  # the place call's outcome is unknown: ask (never place twice)
            active = job.active
            if active is None:
                return True
            if active.order is None:
                return False
        order = active.order
        if not order.is_open:
            job.active = None
            return self._after_terminal(job, order)
        expired = job.work.expires_at is not None and utc_now() >= job.work.expires_at
        due = order.order_type == "LIMIT" and self.clock() - active.placed_at >= self.config.reprice_after_s
        if not (expired or due) or active.cancel_sent:
            return False
        active.cancel_sent = True
        cancelled = self.exchange.cancel_order(job.work.symbol, active.request.client_order_id)
        self._absorb(job, cancelled)
        job.active = None
        if expired:
            self._finish(job, "EXPIRED", "routing deadline passed")
            return False
        if job.filled < job.slice_target() - job.lot / 2:
            job.attempt += 1
            if job.attempt <= self.config.max_reprices:
                self.emit.router_event(job.work, "reprice", f"unfilled after {self.config.reprice_after_s:g}s")
        return self._after_terminal(job, cancelled)

    def _read_back(self, job: Job) -> None:
        active = job.active
        assert active is not None
        try:
            order = self.exchange.fetch_order(job.work.symbol, active.request.client_order_id)
        except OrderNotFound:
            if active.order is not None:
                raise
            job.active = None  # the unanswered place never reached the exchange
            return
        if active.order is None:
            self.quality.placed()
        active.order = order
        self._absorb(job, order)
        if not order.is_open:
            self._advance(job)

    def _after_terminal(self, job: Job, order: Order) -> bool:
        # The paper engine cancels a reduce-only order whose position is gone; Binance expires it
        # (status EXPIRED). Either way the position is closed: placing again would only be refused.
        if order.status in ("CANCELED", "EXPIRED") and order.reason == "reduce_only_no_position":
            self._finish(job, "FILLED" if job.filled > 0 else "CANCELED", "position already closed")
            return False
        return True

    def _absorb(self, job: Job, order: Order) -> None:
        """An order as an answer shows it: its fills, then its status."""
        for fill in order.fills:
            self._absorb_fill(job, fill)
        if self._absorb_status(job, order) and job.active is not None \
                and job.active.request.client_order_id == order.client_order_id:
            job.active.order = order

    def _absorb_fill(self, job: Job, fill: ExchangeFill) -> None:
        if fill.trade_id in job.seen:
            return
        job.seen.add(fill.trade_id)
        job.filled = round(job.filled + fill.qty, 12)
        slip = slippage_bps(fill.side, fill.price, job.arrival_mid) if job.arrival_mid else None
        self.quality.filled(FillSample(fill.qty * fill.price, fill.liquidity == "maker", slip))
        self.emit.fill(job.work, fill, job.arrival_mid)

    def _absorb_status(self, job: Job, order: Order) -> bool:
        """Record a status the job has not seen yet; False for news older than what it knows."""
        known = job.orders.get(order.client_order_id)
        if not _newer(known, order):
            return False
        job.orders[order.client_order_id] = order
        job.last_order = order
        if known is None or known.status != order.status:
            self.emit.order_event(job.work, order)
            action = {"FILLED": "filled", "PARTIALLY_FILLED": "partial_fill", "CANCELED": "cancel"}.get(order.status)
            if action:
                self.emit.router_event(job.work, action, order.reason, price=order.avg_price or order.price,
                                       qty=order.filled_qty)
        return True

    def _cancel_active(self, job: Job) -> None:
        if job.active is None:
            return
        try:
            order = self.exchange.cancel_order(job.work.symbol, job.active.request.client_order_id)
            self._absorb(job, order)
        except OrderNotFound:
            pass
        job.active = None

    def _resume(self, job: Job) -> None:
        """Pick an intent up after a restart from what the exchange knows about it."""
        work = job.work
        for found in self.exchange.fetch_orders(work.symbol, f"{work.intent_id}."):
            suffix = found.client_order_id.rsplit(".", 1)[-1]
            if suffix.isdigit():
                job.child_seq = max(job.child_seq, int(suffix))
            order = self.exchange.cancel_order(work.symbol, found.client_order_id) if found.is_open else found
            self._absorb(job, order)
        if job.slices > 1:
            job.slice_no = min(job.slices, math.floor(job.filled / (work.qty / job.slices) + 1e-9))
        self.emit.router_event(work, "route_start", f"resumed: {job.filled:g} of {work.qty:g} filled before",
                               qty=work.qty)
        log.info("resumed %s %s: %g of %g already filled", work.intent_id, work.symbol, job.filled, work.qty)

    def _finish(self, job: Job, status: str, reason: str) -> None:
        work = job.work
        if self.jobs.pop(work.intent_id, None) is None:
            return
        self.finished[work.intent_id] = None
        while len(self.finished) > FINISHED_KEPT:
            self.finished.popitem(last=False)
        self.emit.intent_done(work, job.last_order, status, min(job.filled, work.qty), reason)
        action = {"EXPIRED": "expire", "REJECTED": "reject"}.get(status, "complete")
        self.emit.router_event(work, action, f"{status}: {reason}; filled {job.filled:g} of {work.qty:g}",
                               qty=job.filled)

    def cancel_all(self) -> None:
        """Best effort on shutdown: nothing rests unattended. Intents stay pending and resume."""
        for job in list(self.jobs.values()):
            try:
                self._cancel_active(job)
            except Exception as exc:  # shutting down: log and carry on with the others
                log.warning("could not cancel %s on shutdown: %s", job.work.intent_id, exc)
