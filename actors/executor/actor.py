"""The executor: decides entries on bar closes and publishes the positions, ledger, risk, factor
and KPI documents.

Inputs, each acted on when it arrives:
- the market stream: `BookTicked` keeps the top of book and mark of each symbol current;
  `BarClosed` runs the strategy on that symbol's bars and, if it signals, the risk checks and
  a durable `submit_order` (its bracket and TTL on it) at once: one decision per closed bar;
- the account stream: the exchange's positions (positions_state is the exchange surface);
- the hub: the positions store's views (open positions, today's P&L and trades,
  reconciliation, active scope), nav_state and router_state, committed NAV samples (VaR)
  and order updates (an entry finished);
- timers: the documents every `loop_s`, a reconciliation report every
  `store.reconcile_interval_s` (and after the exchange streams had to resync), the expiry of
  entries nobody reported done.

The executor holds no position arithmetic: its ledger is the store's open positions (from
committed fills), P&L is the store's. Recovery: the open positions and pending intents come
from the hub's snapshot; the strategy's bars from the exchange's request API.
"""

from __future__ import annotations

import logging
import statistics
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actors.base import Actor
from actors.base.halt import ENTRY_HALTS_KEY, EntryHalt
from actors.base.halt import TOPICS as HALT_TOPICS
from actors.executor.kpis import build_kpis
from actors.executor.ledger import LedgerBook, bracket, new_position_id
from actors.executor.metrics import ExecutorMetrics
from actors.executor.performance import Performance
from actors.executor.positions import collect_rows_by_symbol
from actors.executor.risk import RiskDecision, RiskInputs, evaluate_entry, horizon_scale, var_cvar
from actors.executor.store_link import StoreLink
from actors.executor.strategy import FactorModel, SymbolView
from bus.codec import BusError
from bus.messages import (
    ClosedTrade,
    EntryVetoed,
    FactorDiagnostics,
    NavState,
    OrderUpdated,
    PositionRow,
    PositionsState,
    RiskCaps,
    RiskSnapshot,
    RouterState,
    SignalGenerated,
    SubmitOrder,
    SymbolFactors,
    stored_in_scope,
    utc_now,
)
from bus.subscriber import Update
from config.risk import load_risk_limits
from config.settings import Settings
from config.strategy import load_strategy_config
from exchange.adapter import Bar, BookTop, ExchangePosition, Instrument
from exchange.client import connect_exchange
from exchange.errors import ExchangeError
from exchange.streams import BarClosed, BookTicked, ExchangeSnapshot, PositionChanged

log = logging.getLogger(__name__)

PENDING_GRACE_S = 30.0  # an entry past its routing deadline by this much is no longer waited for
STORE_VIEWS = ("open_positions", "active_scope", "reconciliation", "pnl_today", "trades_today")


def new_intent_id(prefix: str) -> str:
    # Short enough that "<intent_id>.<n>" is a valid exchange client order id (36 chars).
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def pending_from_snapshot(raw: Iterable[Mapping]) -> list[SubmitOrder]:
    """Entry intents among the hub's pending intents (it adds its `seq` to each)."""
    return [SubmitOrder.model_validate({k: v for k, v in item.items() if k != "seq"})
            for item in raw if item.get("type") == SubmitOrder.TYPE]


@dataclass
class PendingEntry:
    symbol: str
    notional: float
    expires_at: datetime
    seq: int | None = None  # hub seq once ACKed


class Executor(Actor):
    name = "executor"
    default_loop_s = 1.0
    wants_updates = True
    subscribe_keys = ("positions_ledger", "nav_state", "router_state", "risk_snapshot", "pending_intents",
                      ENTRY_HALTS_KEY, *STORE_VIEWS)
    subscribe_topics = (NavState.TYPE, OrderUpdated.TYPE, *HALT_TOPICS)
    exchange_streams = ("market", "account")

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.config = load_strategy_config(settings)
        self.limits = load_risk_limits(settings)
        super().__init__(settings, serve_metrics=serve_metrics)
        self.exchange = connect_exchange(settings)
        self.model = FactorModel(self.config.signal)
        self.book = LedgerBook()
        self.performance = Performance()
        self.pending: dict[str, PendingEntry] = {}
        self.navs: deque[tuple[float, float]] = deque(maxlen=self.limits.var.window)  # (epoch s, NAV)
        self.veto_counts: Counter[str] = Counter()
        self.bars: dict[str, deque[Bar]] = {}
        self.views: dict[str, SymbolView] = {}
        self._decided: dict[str, datetime] = {}  # symbol -> the bar its last decision was on
        self.tops: dict[str, BookTop] = {}
        self.positions: dict[str, ExchangePosition] = {}  # the exchange's, from the account stream
        self.instruments: dict[str, Instrument] = {}
        self.store = StoreLink(settings)
        self.halt = EntryHalt(settings.mode, settings.account)
        self._good_nav: NavState | None = None
        self._last_good_rows: dict[str, PositionRow] = {}
        self.stale_rows: dict[str, str] = {}  # symbol -> why its exchange data is unusable
        self._last_closed_seq = 0  # trades closed at or before this seq were counted
        self._scope_checked = False
        self._report_trigger: str | None = "start"
        self.m = ExecutorMetrics(self.registry)

    def setup(self) -> None:
        self.open_exchange_streams(self.exchange)
        self.every(self.loop_s, self._publish, "documents")
        self.every(1.0, self._housekeeping, "housekeeping")

    # --- the hub ---------------------------------------------------------------------------------

    def restore(self, pending: Iterable[SubmitOrder], vetoes: Mapping[str, int] | None = None) -> None:
        """Pending entries and veto counts after a restart (positions come from the store's view)."""
        for intent in pending:
            if intent.purpose != "entry" or (intent.mode, intent.account) != (self.settings.mode,
                                                                               self.settings.account):
                continue
            self.pending[intent.intent_id] = PendingEntry(
                intent.symbol, intent.qty * (intent.arrival_mid or 0.0),
                intent.expires_at or utc_now() + timedelta(seconds=self.config.entry.intent_expiry_s))
        self.veto_counts.update(vetoes or {})
        log.info("restored %d open positions, %d pending entries", len(self.book.positions), len(self.pending))

    def on_resync(self) -> None:
        assert self.subscriber is not None
        snapshot = self.subscriber.snapshot_state
        self.store.absorb(snapshot)
        self.halt.absorb(snapshot.get(ENTRY_HALTS_KEY))
        if not self.ready:  # trades closed before this process started are history, not news
            self._last_closed_seq = max((int(t["closed_seq"]) for t in snapshot.get("trades_today") or []), default=0)
        for key in STORE_VIEWS:
            self.on_view(key, snapshot.get(key))
        pending = pending_from_snapshot(snapshot.get("pending_intents") or [])
        if not self.ready:
            risk = self.subscriber.document("risk_snapshot")
            self.restore(pending, risk.vetoes if isinstance(risk, RiskSnapshot) else None)
            return
        # After a hub restart: forget entries the hub finished while we were not listening.
        live = {i.intent_id for i in pending}
        for intent_id, entry in list(self.pending.items()):
            if intent_id not in live and entry.seq is not None and entry.seq <= self.subscriber.seq:
                del self.pending[intent_id]

    def on_view(self, key: str, value: Any) -> None:
        if value is None:
            return
        self.store.absorb({key: value})
        if key == "open_positions":
            self.book.replace(stored_in_scope(value, self.settings.mode, self.settings.account) or [])
        elif key == "trades_today":
            trades = [ClosedTrade.model_validate(t) for t in value]
            self.performance.replace(trades, self.settings.mode, self.settings.account)
            for trade in trades:
                if trade.closed_seq > self._last_closed_seq and (trade.mode, trade.account) == (
                        self.settings.mode, self.settings.account):
                    self._closed(trade)
            self._last_closed_seq = max([self._last_closed_seq, *(t.closed_seq for t in trades)])

    def on_update(self, update: Update) -> None:
        msg = update.msg
        if self.halt.apply(msg):
            log.warning("entries %s", self.halt.detail or "resumed")
        elif isinstance(msg, NavState):
            if msg.sources_ok:
                self.navs.append((msg.updated_at.timestamp(), msg.nav_total))
            else:  # an anomalous reading (a ghost, or a deposit) never reaches VaR/CVaR or the KPIs
                self.m.nav_excluded.inc()
        elif isinstance(msg, OrderUpdated) and msg.intent_done:
            self.pending.pop(msg.intent_id, None)

    def _closed(self, trade: ClosedTrade) -> None:
        self.m.closed_trades.inc()
        self.m.closed_pnl.labels("win" if trade.realized_net > 0 else "loss").inc(abs(trade.realized_net))
        log.info("closed %s %s %s (%s): net %.4f (gross %.4f, fees %.4f)", trade.side, trade.symbol,
                 trade.position_id, trade.close_reason, trade.realized_net, trade.realized_gross, trade.fees)

    # --- the exchange streams --------------------------------------------------------------------

    def on_exchange_resync(self, snapshot: ExchangeSnapshot, reason: str) -> None:
        self.tops.update(snapshot.tops)
        self.positions = {p.symbol: p for p in snapshot.positions}
        self.instruments = self.exchange.instruments()
        for symbol in self.settings.symbols:
            bars = self.exchange.fetch_bars(symbol, self.config.signal.bars)
            self.bars[symbol] = deque(bars, maxlen=self.config.signal.bars)
            view = self.model.evaluate(symbol, bars)
            if view is not None:
                self.views[symbol] = view
                self._decided[symbol] = view.bar_ts  # the bars we start from were decided on before
        if reason != "join":
            self._report_trigger = "reconnect"  # what the exchange holds may have moved meanwhile

    def on_market(self, event: object) -> None:
        if isinstance(event, BookTicked):
            self.tops[event.top.symbol] = event.top
            position = self.positions.get(event.top.symbol)
            if position is not None:  # the surface shows the exchange's position at the newest mark
                self.positions[event.top.symbol] = position.model_copy(update={"mark_price": event.top.mark})
        elif isinstance(event, BarClosed):
            self._on_bar(event.symbol, event.bar)

    def on_account(self, event: object) -> None:
        if isinstance(event, PositionChanged):
            if event.position is None:
                self.positions.pop(event.symbol, None)
            else:
                self.positions[event.symbol] = event.position

    # --- deciding: one decision per closed bar ---------------------------------------------------

    def _on_bar(self, symbol: str, bar: Bar) -> None:
        bars = self.bars.get(symbol)
        if bars is None:
            return  # not joined yet: the resync loads the history
        if bars and bar.ts <= bars[-1].ts:
            return  # already have it
        bars.append(bar)
        view = self.model.evaluate(symbol, list(bars))
        if view is None:
            return
        self.views[symbol] = view
        if self._decided.get(symbol) == view.bar_ts:
            return
        self._decided[symbol] = view.bar_ts
        self._consider_entry(symbol, view, utc_now())

    def _nav_doc(self) -> NavState | None:
        """The newest NAV reading, anomalous or not (risk checks see that it is anomalous)."""
        assert self.subscriber is not None
        doc = self.subscriber.document("nav_state")
        if isinstance(doc, NavState) and doc.sources_ok:
            self._good_nav = doc
        return doc if isinstance(doc, NavState) else None

    def _anomaly_detail(self, nav: NavState) -> str:
        """Why entries stop on an anomalous NAV, and what to run if it was a real deposit."""
        last = nav.anomalies[-1] if nav.anomalies else None
        what = (f"NAV {last.nav:.2f} against peak {last.previous_peak:.2f} ({last.reason})" if last
                else f"NAV {nav.nav_total:.2f}")
        return (f"{what} is anomalous, so entries stop. A real deposit or withdrawal? Move the peak: "
                f"v7 nav reset-peak --reason 'deposit' (docs/operations.md)")

    def _router_doc(self) -> RouterState | None:
        assert self.subscriber is not None
        doc = self.subscriber.document("router_state")
        return doc if isinstance(doc, RouterState) else None

    def _held(self) -> set[str]:
        return set(self.positions) | set(self.book.positions)

    def _consider_entry(self, symbol: str, view: SymbolView, now: datetime) -> None:
        if not self.ready or not self.stream_ready or not self._scope_checked:
            return
        top, instrument, nav = self.tops.get(symbol), self.instruments.get(symbol), self._nav_doc()
        if top is None or instrument is None:
            return
        if nav is None:
            # Before sync's first sample there is nothing to size with; deciding now would only
            # spend this bar's signal on a stale_nav veto. (A NAV that goes stale later is vetoed.)
            self.status_detail = "waiting for the first NAV sample"
            return
        held = self._held()
        if view.direction == "FLAT" or symbol in held or symbol in {p.symbol for p in self.pending.values()}:
            return
        signal_id = new_intent_id("sg")
        self.publish(SignalGenerated(ts=now, signal_id=signal_id, symbol=symbol, direction=view.direction,
                                     score=view.score, factors=view.factors))
        self.m.signals.labels(symbol, view.direction).inc()
        blocked = ("halted", self.halt.detail) if self.halt.halted else self.store.entry_block(symbol)
        if blocked is None and symbol in self.stale_rows:
            blocked = ("stale_position_data", self.stale_rows[symbol])
        if blocked is not None:
            self._veto(signal_id, symbol, RiskDecision(*blocked), now)
            return
        dd_state = nav.dd_state
        target = self.config.entry.position_nav_pct * self.model.conviction(view.score)
        if dd_state == "CAUTION":
            target *= self.config.entry.caution_size_factor
        pending_notional = sum(p.notional for p in self.pending.values())
        gross = sum(p.qty * p.mark_price for p in self.positions.values()) + pending_notional
        decision = evaluate_entry(self.limits, RiskInputs(
            symbol=symbol, price=top.mid, lot_size=instrument.lot_size, nav=nav.nav_total,
            nav_age_s=(now - nav.updated_at).total_seconds(), dd_state=dd_state,
            open_positions=len(held) + len(self.pending), symbol_exposure=0.0, portfolio_exposure=gross,
            target_fraction=target, nav_sources_ok=nav.sources_ok,
        ))
        if not decision.approved:
            if decision.reason == "stale_nav" and not nav.sources_ok:
                decision = RiskDecision("stale_nav", self._anomaly_detail(nav))
            self._veto(signal_id, symbol, decision, now)
            return
        side = "BUY" if view.direction == "LONG" else "SELL"
        tp, sl = bracket(view.direction, top.mid, view.atr, self.config.entry, instrument.tick_size)  # type: ignore[arg-type]
        intent = SubmitOrder(
            ts=now, intent_id=new_intent_id("en"), mode=self.settings.mode, account=self.settings.account,
            symbol=symbol, side=side, qty=decision.qty, purpose="entry", position_id=new_position_id(),
            arrival_mid=top.mid, tp=tp, sl=sl, ttl_ts=now + timedelta(seconds=self.config.entry.ttl_s),
            expires_at=now + timedelta(seconds=self.config.entry.intent_expiry_s), signal_id=signal_id,
        )
        pending = PendingEntry(symbol, decision.qty * top.mid, intent.expires_at or now)
        self.pending[intent.intent_id] = pending
        self.m.intents.labels("entry").inc()
        log.info("entry %s %s qty=%g mid=%.8g tp=%s sl=%s score=%.3f", side, symbol, decision.qty, top.mid, tp, sl,
                 view.score)
        try:
            pending.seq = self.publish_durable(intent, timeout=10.0)
        except TimeoutError:
            log.warning("intent %s not ACKed yet; it stays queued and will be delivered", intent.intent_id)
        except BusError as exc:
            log.error("hub refused intent %s: %s", intent.intent_id, exc)
            self.pending.pop(intent.intent_id, None)

    def _veto(self, signal_id: str, symbol: str, decision: RiskDecision, now: datetime) -> None:
        assert decision.reason is not None
        self.veto_counts[decision.reason] += 1
        self.m.vetoes.labels(decision.reason).inc()
        self.publish(EntryVetoed(ts=now, signal_id=signal_id, symbol=symbol, reason=decision.reason,
                                 detail=decision.detail))

    # --- timers ----------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        if not self.ready:
            self.status_detail = "waiting for the hub snapshot"
            return
        if not self._scope_checked:
            self._make_scope_active()
        now = utc_now()
        for intent_id, entry in list(self.pending.items()):
            if now > entry.expires_at + timedelta(seconds=PENDING_GRACE_S):
                log.warning("entry %s on %s never reported done; no longer waiting for it", intent_id, entry.symbol)
                del self.pending[intent_id]
        self.book.adopt(self.views, self.instruments, now, self.config.entry)
        if self._report_trigger is not None or self.store.report_due() is not None:
            self._report(now, self._report_trigger or self.store.report_due() or "periodic")

    def _report(self, now: datetime, trigger: str) -> None:
        """What the exchange holds, read over the request API, for the store to compare."""
        self._report_trigger = None
        try:
            positions = self.exchange.fetch_positions()
        except ExchangeError as exc:
            self.m.exchange_errors.labels(getattr(exc, "kind", "error")).inc()
            self.publish(self.store.report(now, None, trigger, error=str(exc)))
            return
        self.publish(self.store.report(now, positions, trigger))

    def _publish(self) -> None:
        if not self.ready:
            return
        if not self.stream_ready:
            self.degrade("waiting for the exchange streams")
            return
        rows, self.stale_rows = collect_rows_by_symbol(sorted(self.positions.values(), key=lambda p: p.symbol),
                                                       self._last_good_rows)
        if self.stale_rows:
            self.m.exchange_errors.labels("position_data").inc(len(self.stale_rows))
            self.degrade("exchange position data unusable for " + ", ".join(sorted(self.stale_rows)))
        elif self.status == "degraded":
            self.recover()
        now = utc_now()
        latest = self._nav_doc()
        nav = self._good_nav  # the figures use the last NAV the guard accepted
        symbols = list(self.settings.symbols)
        nav_total = nav.nav_total if nav and nav.nav_total > 0 else None
        exposure = {r.symbol: r.notional / nav_total for r in rows} if nav_total else {}
        gross = sum(exposure.values())
        ratios = [v.atr_ratio for v in self.views.values()]
        regime = self.model.regime(statistics.median(ratios)) if ratios else None
        var_cfg = self.limits.var
        # Market seconds per wall second: the paper exchange (SIM) runs its market fast, so a
        # NAV sample interval there holds `time_scale` times as much market risk.
        market = self.settings.paper.time_scale if self.settings.mode == "SIM" else 1.0
        scale = horizon_scale([t * market for t, _n in self.navs], var_cfg.horizon_s)
        var, cvar = var_cvar([n for _t, n in self.navs], var_cfg.confidence, var_cfg.min_samples, scale)
        scope = self.store.pnl_scope()
        fee_pnl_ratio = None
        if scope is not None and abs(scope.realized_gross) > 1e-9:
            fee_pnl_ratio = scope.fees / abs(scope.realized_gross)
        dd_state = nav.dd_state if nav else "NORMAL"
        self.publish(PositionsState(scope=self.scope, updated_at=now, positions=rows, stale_symbols=self.stale_rows))
        self.publish(self.book.ledger(now, self.scope))
        self.publish(RiskSnapshot(
            scope=self.scope, updated_at=now, dd_state=dd_state, atr_regime=regime, var_nav_pct=var,
            cvar_nav_pct=cvar,
            fee_pnl_ratio=fee_pnl_ratio, caps=RiskCaps(**self.limits.caps.model_dump()),
            exposure_nav_pct=exposure,
            portfolio_exposure_nav_pct=gross, vetoes=dict(self.veto_counts),
        ))
        self.publish(FactorDiagnostics(
            scope=self.scope, updated_at=now, weights=self.model.weights,
            per_symbol={s: SymbolFactors(factors=v.factors, score=v.score, direction=v.direction)
                        for s, v in self.views.items()},
        ))
        if nav is not None and latest is not None:
            self.publish(build_kpis(self.scope, now, nav, rows, symbols, scope, self.store.pnl_scopes(), var,
                                    cvar, regime, fee_pnl_ratio, self._router_doc(), self.performance,
                                    latest_ok=latest.sources_ok))
            self.m.nav.set(nav.nav_total)
            self.m.drawdown.set(nav.dd_pct)
        self.m.open_positions.set(len(rows))
        self.m.pending_entries.set(len(self.pending))
        self.m.exposure.set(gross)
        self.m.unrealized.set(sum(r.unrealized_pnl for r in rows))
        self.m.adopted.inc(self.book.adoptions)
        self.book.adoptions = 0

    def _make_scope_active(self) -> None:
        """Trade only in the active scope: make ours active on start (a switch closes nothing)."""
        switch = self.store.scope_switch_needed()
        if switch is not None:
            log.warning("active scope is %s/%s; switching it to %s/%s", self.store.active.mode,  # type: ignore[union-attr]
                        self.store.active.account, switch.mode, switch.account)  # type: ignore[union-attr]
            try:
                self.publish_durable(switch, timeout=10.0)
            except (TimeoutError, BusError) as exc:
                log.error("scope switch not confirmed (%s); retrying", exc)
                return
        self._scope_checked = True

    def teardown(self) -> None:
        self.exchange.close()
