"""The router actor: works order intents and exit requests the moment they are committed.

Inputs, each acted on when it arrives:
- hub topics `submit_order` and `request_exit`: an intent is journaled (ACKed) before it is
  published, so the router only ever works committed intents; its first order leaves at once;
- the exchange account stream: order changes and fills move the job on (a terminal maker
  order leads to the next slice or the taker fallback without waiting for a poll);
- the market stream: the latest top of book, for maker prices without a request;
- timers: one wake-up at the next routing deadline (reprice, TWAP pause, retry, expiry),
  router_state every `state_every_s`, and a slow read-back of working orders (safety net).

The hub's `pending_intents` snapshot is the recovery source: on start, and after any resync,
every pending intent this router does not know is resumed from what the exchange reports for
it. Fills are durable messages, pipelined (the router does not wait for each ACK); order events
and router events are queued in order behind them on the same stream.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future

from actors.base import Actor
from actors.base.halt import ENTRY_HALTS_KEY, EntryHalt
from actors.base.halt import TOPICS as HALT_TOPICS
from actors.router.metrics import RouterMetrics
from actors.router.quality import Quality, slippage_bps
from actors.router.routing import RouteEngine
from actors.router.work import Work
from bus.codec import BusError
from bus.messages import OrderFilled, OrderUpdated, RequestExit, RouterActed, RouterState, SubmitOrder, utc_now
from bus.subscriber import Update
from config.settings import Settings
from config.strategy import load_strategy_config
from exchange.adapter import ExchangeFill, Order
from exchange.client import connect_exchange
from exchange.errors import ExchangeUnavailable
from exchange.streams import BookTicked, ExchangeSnapshot, OrderChanged, TradeExecuted

log = logging.getLogger(__name__)

READ_BACK_EVERY_S = 10.0
MIN_WAKE_GAP_S = 0.005  # working orders are read back this often even when the stream is healthy


class Router(Actor):
    name = "router"
    default_loop_s = 0.25
    wants_updates = True
    subscribe_keys = ("pending_intents", "router_state", ENTRY_HALTS_KEY)
    subscribe_topics = (SubmitOrder.TYPE, RequestExit.TYPE, *HALT_TOPICS)
    exchange_streams = ("market", "account")

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.config = load_strategy_config(settings).router
        super().__init__(settings, serve_metrics=serve_metrics)
        self.exchange = connect_exchange(settings)
        self.quality = Quality(self.config.quality_window)
        self.engine = RouteEngine(self.exchange, self.config, self.quality, self)
        self.m = RouterMetrics(self.registry)
        self.backlog: list[tuple[Work, bool]] = []
        self.halt = EntryHalt(settings.mode, settings.account)
        self._wake_at: float | None = None

    def setup(self) -> None:
        self.open_exchange_streams(self.exchange)
        self.every(self.config.state_every_s, self._publish_state, "router_state")
        self.every(READ_BACK_EVERY_S, lambda: self._act(self.engine.reconcile), "read_back")
        self.every(1.0, self._retry, "retry_when_degraded")

    # --- intake --------------------------------------------------------------------------------

    def _mine(self, work: Work) -> bool:
        return (work.mode, work.account) == (self.settings.mode, self.settings.account)

    def on_resync(self) -> None:
        assert self.subscriber is not None
        if not self.ready:
            doc = self.subscriber.document("router_state")
            if isinstance(doc, RouterState):
                self.quality.restore(doc)
        self.halt.absorb(self.subscriber.snapshot_state.get(ENTRY_HALTS_KEY))
        for raw in self.subscriber.snapshot_state.get("pending_intents") or []:
            try:
                work = Work.from_pending(raw, self.config.sl_taker)
            except ValueError as exc:
                log.error("unreadable pending intent %s: %s", raw.get("intent_id"), exc)
                continue
            if work is not None and self._mine(work) and not self.engine.knows(work.intent_id):
                self.backlog.append((work, True))
        # Right after this handler (the router counts as ready once it returns).
        self.at(time.monotonic(), lambda: self._act(self._take_backlog), "resume_pending")

    def on_update(self, update: Update) -> None:
        msg = update.msg
        if self.halt.apply(msg):
            if self.halt.halted:  # exits go on; no entry keeps working
                self._act(lambda: self.engine.cancel_entries(self.halt.detail))
            return
        if isinstance(msg, SubmitOrder):
            work = Work.from_intent(msg)
        elif isinstance(msg, RequestExit):
            work = Work.from_exit(msg, self.config.sl_taker)
        else:
            return
        if self._mine(work):
            self.backlog.append((work, False))
            self._act(self._take_backlog)

    def _take_backlog(self) -> None:
        backlog, self.backlog = self.backlog, []
        for index, (work, resume) in enumerate(backlog):
            if self.engine.knows(work.intent_id):
                continue
            if self.halt.halted and not work.is_exit:
                self.engine.refuse(work, self.halt.detail, status="CANCELED")
                continue
            try:
                lot = self.exchange.instruments()[work.symbol].lot_size
                mid = work.arrival_mid or self.engine.top(work.symbol).mid
            except KeyError:
                self.engine.refuse(work, f"unknown_symbol: {work.symbol} is not listed on the exchange")
                continue
            except ExchangeUnavailable:
                self.backlog = backlog[index:] + self.backlog
                raise
            if self.engine.submit(work, resume=resume, lot=lot, notional=work.qty * mid):
                self.m.intents.labels(work.purpose).inc()

    # --- the exchange streams ------------------------------------------------------------------

    def on_market(self, event: object) -> None:
        if isinstance(event, BookTicked):
            self.engine.on_top(event.top)

    def on_account(self, event: object) -> None:
        if isinstance(event, TradeExecuted):
            self._act(lambda: self.engine.on_fill(event.fill))
        elif isinstance(event, OrderChanged):
            self._act(lambda: self.engine.on_order(event.order))

    def on_exchange_resync(self, snapshot: ExchangeSnapshot, reason: str) -> None:
        for top in snapshot.tops.values():
            self.engine.on_top(top)
        if reason != "join":
            log.info("exchange streams resynced (%s); reading working orders back", reason)
        self._act(self.engine.reconcile)  # whatever the stream may have missed

    # --- acting --------------------------------------------------------------------------------

    def _act(self, fn) -> None:
        """Run one engine action; the exchange not answering degrades the router (retried)."""
        if not self.ready:
            return
        try:
            fn()
        except ExchangeUnavailable as exc:
            self.m.exchange_errors.inc()
            self.degrade(f"exchange: {exc}")
        else:
            if self.status == "degraded":
                self.recover()
        self._schedule_wake()
        self.m.active.set(len(self.engine.jobs))

    def _schedule_wake(self) -> None:
        due = self.engine.next_deadline()
        if due is None or (self._wake_at is not None and self._wake_at <= due and self._wake_at > time.monotonic()):
            return
        # Events move jobs at once; a deadline already passed (a job the exchange could not serve)
        # is retried no faster than this, never in a tight loop.
        due = max(due, time.monotonic() + MIN_WAKE_GAP_S)
        self._wake_at = due
        self.at(due, self._wake, "routing_deadline")

    def _wake(self) -> None:
        self._wake_at = None
        self._act(self.engine.wake)

    def _retry(self) -> None:
        if self.status == "degraded" or self.backlog:
            self._act(self._take_backlog)
            self._act(self.engine.wake)

    def _publish_state(self) -> None:
        state = self.quality.state(self.scope, self.config.maker_first, self.config.twap_threshold_notional,
                                   sum(1 for j in self.engine.jobs.values() if j.slices > 1))
        self.publish(state)
        if state.maker_fill_share is not None:
            self.m.maker_share.set(state.maker_fill_share)
        if state.reject_rate is not None:
            self.m.reject_rate.set(state.reject_rate)

    def teardown(self) -> None:
        self.engine.cancel_all()
        self._publish_state()
        self.exchange.close()

    # --- Emitter: what the engine reports --------------------------------------------------------

    def order_event(self, work: Work, order: Order) -> None:
        if order.status == "NEW":
            self.m.orders.labels(order.order_type).inc()
        self.publish(OrderUpdated(
            intent_id=work.intent_id, order_id=order.order_id, mode=work.mode, account=work.account,
            symbol=work.symbol, side=order.side, status=order.status, order_type=order.order_type,
            post_only=order.post_only, reduce_only=order.reduce_only, price=order.avg_price or order.price,
            qty=order.qty, filled_qty=order.filled_qty, reason=order.reason,
        ))

    def intent_done(self, work: Work, last: Order | None, status: str, filled: float, reason: str) -> None:
        self.m.intents_done.labels(status).inc()
        self.publish(OrderUpdated(
            intent_id=work.intent_id, order_id=last.order_id if last else "none", mode=work.mode,
            account=work.account, symbol=work.symbol, side=work.side, status=status,  # type: ignore[arg-type]
            order_type=last.order_type if last else "MARKET", post_only=last.post_only if last else False,
            reduce_only=work.reduce_only, price=(last.avg_price or last.price) if last else None, qty=work.qty,
            filled_qty=round(filled, 12), reason=reason[:2000], intent_done=True,
        ))
        log.info("intent %s %s %s %s: %s (filled %g of %g)", work.intent_id, work.purpose, work.side, work.symbol,
                 status, filled, work.qty)

    def fill(self, work: Work, fill: ExchangeFill, arrival_mid: float | None) -> None:
        self.m.fills.labels(fill.liquidity).inc()
        if arrival_mid:
            self.m.slippage.observe(slippage_bps(fill.side, fill.price, arrival_mid))
        msg = OrderFilled(
            ts=fill.ts, trade_id=fill.trade_id, order_id=fill.order_id, intent_id=work.intent_id,
            mode=work.mode, account=work.account, symbol=fill.symbol, side=fill.side, qty=fill.qty,
            price=fill.price, fee=fill.fee, fee_asset=fill.fee_asset, liquidity=fill.liquidity,
            reduce_only=fill.reduce_only, arrival_mid=arrival_mid, position_id=work.position_id,
            realized_pnl=fill.realized_pnl,
        )
        # Durable and pipelined: the router moves on while the hub journals it (a fill lost with
        # this process is found again by the resume, which reads the intent's orders back).
        future = self.sender.submit(msg)
        future.add_done_callback(lambda f, trade=fill.trade_id: self._fill_answered(trade, f))

    def _fill_answered(self, trade_id: str, future: Future[int]) -> None:
        exc = future.exception()
        if isinstance(exc, BusError):
            log.error("hub refused fill %s: %s", trade_id, exc)

    def router_event(self, work: Work, action: str, detail: str = "", price: float | None = None,
                     qty: float | None = None) -> None:
        if action == "reject":
            self.m.rejects.labels(detail.split(":", 1)[0][:40]).inc()
        self.publish(RouterActed(ts=utc_now(), intent_id=work.intent_id, symbol=work.symbol, action=action,  # type: ignore[arg-type]
                                 detail=detail[:2000], price=price, qty=qty))
