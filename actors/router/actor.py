"""The router actor: takes order intents and exit triggers from the bus and works them.

Intents arrive as committed updates (topics order_intent, exit_trigger). The hub's
`pending_intents` snapshot is the recovery source: on start, and after any re-sync, every
pending intent this router does not know is resumed from what the exchange reports for it.
Fills are sent with `send_and_wait` (durable before the router moves on); order events and
router events are queued in order behind them.
"""

from __future__ import annotations

import logging
import time

from actors.base import Actor
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

log = logging.getLogger(__name__)

FILL_ACK_TIMEOUT_S = 5.0


class Router(Actor):
    name = "router"
    default_loop_s = 0.25
    wants_updates = True
    subscribe_keys = ("pending_intents", "router_state")
    subscribe_topics = (SubmitOrder.TYPE, RequestExit.TYPE)

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.config = load_strategy_config(settings).router
        super().__init__(settings, serve_metrics=serve_metrics)
        self.exchange = connect_exchange(settings)
        self.quality = Quality(self.config.quality_window)
        self.engine = RouteEngine(self.exchange, self.config, self.quality, self)
        self.m = RouterMetrics(self.registry)
        self.ready = False
        self.backlog: list[tuple[Work, bool]] = []
        self.next_state_at = 0.0

    # --- intake ----------------------------------------------------------------------------------

    def _mine(self, work: Work) -> bool:
        return (work.mode, work.account) == (self.settings.mode, self.settings.account)

    def on_resync(self) -> None:
        assert self.subscriber is not None
        if not self.ready:
            doc = self.subscriber.document("router_state")
            if isinstance(doc, RouterState):
                self.quality.restore(doc)
            self.ready = True
        for raw in self.subscriber.snapshot_state.get("pending_intents") or []:
            try:
                work = Work.from_pending(raw, self.config.sl_taker)
            except ValueError as exc:
                log.error("unreadable pending intent %s: %s", raw.get("intent_id"), exc)
                continue
            if work is not None and self._mine(work) and not self.engine.knows(work.intent_id):
                self.backlog.append((work, True))

    def on_update(self, update: Update) -> None:
        msg = update.msg
        if isinstance(msg, SubmitOrder):
            work = Work.from_intent(msg)
        elif isinstance(msg, RequestExit):
            work = Work.from_exit(msg, self.config.sl_taker)
        else:
            return
        if self._mine(work):
            self.backlog.append((work, False))

    def _take_backlog(self) -> None:
        backlog, self.backlog = self.backlog, []
        for index, (work, resume) in enumerate(backlog):
            if self.engine.knows(work.intent_id):
                continue
            try:
                lot = self.exchange.instruments()[work.symbol].lot_size
                mid = work.arrival_mid or self.exchange.fetch_tops([work.symbol])[work.symbol].mid
            except KeyError:
                self.engine.refuse(work, f"unknown_symbol: {work.symbol} is not listed on the exchange")
                continue
            except ExchangeUnavailable:
                self.backlog = backlog[index:] + self.backlog
                raise
            if self.engine.submit(work, resume=resume, lot=lot, notional=work.qty * mid):
                self.m.intents.labels(work.purpose).inc()

    # --- the loop --------------------------------------------------------------------------------

    def step(self) -> None:
        if not self.ready:
            self.status_detail = "waiting for the hub snapshot"
            return
        try:
            self._take_backlog()
            self.engine.advance_all()
        except ExchangeUnavailable as exc:
            self.m.exchange_errors.inc()
            if self.status != "degraded":
                log.warning("exchange not answering (%s); intents wait", exc)
            self.status, self.status_detail = "degraded", f"exchange: {exc}"[:500]
        else:
            if self.status == "degraded":
                log.info("exchange answering again")
            self.status, self.status_detail = "running", ""
        self.m.active.set(len(self.engine.jobs))
        if time.monotonic() >= self.next_state_at:
            self.next_state_at = time.monotonic() + self.config.state_every_s
            self._publish_state()

    def _publish_state(self) -> None:
        state = self.quality.state(self.config.maker_first, self.config.twap_threshold_notional,
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
        try:
            self.publish_durable(msg, timeout=FILL_ACK_TIMEOUT_S)
        except TimeoutError:
            log.warning("fill %s not ACKed within %gs; it stays queued and will be delivered", fill.trade_id,
                        FILL_ACK_TIMEOUT_S)
        except BusError as exc:
            log.error("hub refused fill %s: %s", fill.trade_id, exc)

    def router_event(self, work: Work, action: str, detail: str = "", price: float | None = None,
                     qty: float | None = None) -> None:
        if action == "reject":
            self.m.rejects.labels(detail.split(":", 1)[0][:40]).inc()
        self.publish(RouterActed(ts=utc_now(), intent_id=work.intent_id, symbol=work.symbol, action=action,  # type: ignore[arg-type]
                                 detail=detail[:2000], price=price, qty=qty))

