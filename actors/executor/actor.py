"""The executor loop. Each iteration:

1. exchange: positions, top of book, new fills, bars (no data -> nothing is published: missing
   data never means flat, and the last good state files stay);
2. ledger: line plans up with positions (adopt unplanned ones with an ATR bracket);
3. strategy: factor views on closed bars; at most one decision per symbol per bar;
4. risk: a signal is vetoed with a named reason or sized, and sent as a durable order intent
   carrying its TP/SL and TTL;
5. publish positions_state, positions_ledger, risk_snapshot, factor_diagnostics, kpis_v7.

Recovery goes through `restore()`: the open positions of this scope from the positions store
(position ids, TP/SL, TTL), pending entry intents and veto counts from the hub's snapshot.
The store link (store_link.py) also reconciles the store with the exchange, blocks entries
the store says to block, and supplies today's P&L per mode and account.
"""

from __future__ import annotations

import logging
import statistics
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from actors.base import Actor
from actors.executor.kpis import build_kpis
from actors.executor.ledger import PositionBook, bracket, new_position_id
from actors.executor.metrics import ExecutorMetrics
from actors.executor.performance import FillBook, Performance, utc_midnight
from actors.executor.positions import PositionDataError, collect_positions_rows
from actors.executor.risk import RiskDecision, RiskInputs, evaluate_entry, horizon_scale, var_cvar
from actors.executor.store_link import StoreLink
from actors.executor.strategy import FactorModel, SymbolView
from bus.codec import BusError
from bus.messages import (
    EntryVetoed,
    FactorDiagnostics,
    LedgerEntry,
    NavState,
    OrderUpdated,
    PositionRow,
    PositionsLedger,
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
from exchange.adapter import BookTop, ExchangeFill, ExchangePosition, Instrument
from exchange.client import connect_exchange
from exchange.errors import ExchangeError

log = logging.getLogger(__name__)

PENDING_GRACE_S = 30.0  # an entry past its routing deadline by this much is no longer waited for
FILL_PAGES_MAX = 20


def _round(value: float | None, digits: int = 10) -> float | None:
    return None if value is None else round(value, digits)


def new_intent_id(prefix: str) -> str:
    # Short enough that "<intent_id>.<n>" is a valid exchange client order id (36 chars).
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def pending_from_snapshot(raw: Iterable[Mapping]) -> list[SubmitOrder]:
    """Entry intents among the hub's pending intents (it adds its `seq` to each)."""
    out = []
    for item in raw:
        if item.get("type") == SubmitOrder.TYPE:
            out.append(SubmitOrder.model_validate({k: v for k, v in item.items() if k != "seq"}))
    return out


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
                      "open_positions", "active_scope", "reconciliation", "pnl_today")
    subscribe_topics = (NavState.TYPE, OrderUpdated.TYPE)

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.config = load_strategy_config(settings)
        self.limits = load_risk_limits(settings)
        super().__init__(settings, serve_metrics=serve_metrics)
        self.exchange = connect_exchange(settings)
        self.model = FactorModel(self.config.signal)
        self.book = PositionBook()
        self.fills = FillBook()
        self.performance = Performance()
        self.pending: dict[str, PendingEntry] = {}
        self.navs: deque[tuple[float, float]] = deque(maxlen=self.limits.var.window)  # (epoch s, NAV)
        self.veto_counts: Counter[str] = Counter()
        self.decided_bar: dict[str, datetime] = {}
        self.views: dict[str, SymbolView] = {}
        self.ready = False
        self.store = StoreLink(settings)
        self._scope_checked = False
        self.m = ExecutorMetrics(self.registry)

    # --- recovery ------------------------------------------------------------------------------

    def restore(self, entries: Iterable[LedgerEntry], pending: Iterable[SubmitOrder],
                vetoes: Mapping[str, int] | None = None) -> None:
        """Rebuild positions, pending entries and veto counts. The one recovery entry point."""
        self.book.restore(entries)
        for intent in pending:
            if intent.purpose != "entry" or (intent.mode, intent.account) != (self.settings.mode,
                                                                               self.settings.account):
                continue
            self.pending[intent.intent_id] = PendingEntry(
                intent.symbol, intent.qty * (intent.arrival_mid or 0.0),
                intent.expires_at or utc_now() + timedelta(seconds=self.config.entry.intent_expiry_s))
            if intent.symbol not in self.book.plans:
                self.book.plan_entry(intent, intent.ts)
        self.veto_counts.update(vetoes or {})
        self.ready = True
        log.info("restored %d ledger entries, %d pending entries", len(self.book.plans), len(self.pending))

    def on_resync(self) -> None:
        assert self.subscriber is not None
        snapshot = self.subscriber.snapshot_state
        pending = pending_from_snapshot(snapshot.get("pending_intents") or [])
        self.store.absorb(snapshot)
        if not self.ready:
            stored = stored_in_scope(snapshot.get("open_positions"), self.settings.mode, self.settings.account)
            if stored is not None:  # the positions store: the truth about what is open
                entries = [LedgerEntry.of_stored(p) for p in stored]
            else:
                ledger = self.subscriber.document("positions_ledger")
                entries = ledger.entries if isinstance(ledger, PositionsLedger) else []
            risk = self.subscriber.document("risk_snapshot")
            self.restore(entries, pending, risk.vetoes if isinstance(risk, RiskSnapshot) else None)
            return
        # After a hub restart: forget entries the hub finished while we were not listening.
        live = {i.intent_id for i in pending}
        for intent_id, entry in list(self.pending.items()):
            if intent_id not in live and entry.seq is not None and entry.seq <= self.subscriber.seq:
                del self.pending[intent_id]

    def on_update(self, update: Update) -> None:
        msg = update.msg
        if isinstance(msg, NavState):
            self.navs.append((msg.updated_at.timestamp(), msg.nav_total))
        elif isinstance(msg, OrderUpdated) and msg.intent_done:
            self.pending.pop(msg.intent_id, None)

    # --- the loop ------------------------------------------------------------------------------

    def step(self) -> None:
        if not self.ready:
            self.status_detail = "waiting for the hub snapshot"
            return
        if not self._scope_checked:
            self._make_scope_active()
        now = utc_now()
        symbols = list(self.settings.symbols)
        report = self.store.report_due()
        try:
            positions = self.exchange.fetch_positions()
            tops = self.exchange.fetch_tops(symbols)
            self._pull_fills(now)
            bars = {s: self.exchange.fetch_bars(s, self.config.signal.bars) for s in symbols}
            instruments = self.exchange.instruments()
            rows = collect_positions_rows(positions)
        except (ExchangeError, PositionDataError) as exc:
            kind = getattr(exc, "kind", "position_data")
            self.m.exchange_errors.labels(kind).inc()
            if self.status != "degraded":
                log.warning("exchange data unavailable (%s); publishing nothing until it is back", exc)
            self.status, self.status_detail = "degraded", f"exchange: {exc}"[:500]
            if report is not None:  # an exchange we cannot read is reported as such, never as flat
                self.publish(self.store.report(now, None, report, error=str(exc)))
            return
        if self.status == "degraded":
            log.info("exchange data back")
        self.status, self.status_detail = "running", ""
        self.store.refresh()
        if report is not None:
            self.publish(self.store.report(now, positions, report))
        self.views = {s: v for s in symbols if (v := self.model.evaluate(s, bars[s])) is not None}
        self._expire_pending(now)
        result = self.book.reconcile(positions, self._pending_symbols(), self.views, instruments, now,
                                     self.config.entry)
        for plan in result.closed:
            realized, fees = self.fills.since(plan.symbol, plan.opened_at)
            net = realized - fees
            self.performance.record(net)
            self.m.closed_trades.inc()
            self.m.closed_pnl.labels("win" if net > 0 else "loss").inc(abs(net))
            log.info("closed %s %s %s: net %.4f (realized %.4f, fees %.4f)", plan.side, plan.symbol,
                     plan.position_id, net, realized, fees)
        self.m.adopted.inc(len(result.adopted))
        nav = self._nav_doc()
        held = {p.symbol for p in positions}
        if nav is None:
            # Before sync's first sample there is nothing to size with; deciding now would only
            # spend this bar's signal on a stale_nav veto. (A NAV that goes stale later is vetoed.)
            self.status_detail = "waiting for the first NAV sample"
        else:
            for symbol in symbols:
                if symbol in tops and symbol in instruments:
                    self._consider_entry(symbol, tops[symbol], instruments[symbol], positions, held, nav, now)
        self._publish(now, rows, positions, nav)

    def _pull_fills(self, now: datetime) -> None:
        if self.fills.cursor is None:
            starts = [utc_midnight(now), *(p.opened_at for p in self.book.plans.values())]
            since = min(starts)
        else:
            since = self.fills.cursor
        for _ in range(FILL_PAGES_MAX):
            page: list[ExchangeFill] = self.exchange.fetch_fills(since=since, limit=1000)
            new = self.fills.add(page)
            if len(page) < 1000 or not new:
                break
            since = page[-1].ts
        if self.fills.cursor is None:
            self.fills.cursor = since
        keep = min([utc_midnight(now), *(p.opened_at for p in self.book.plans.values())])
        self.fills.prune(keep)

    def _pending_symbols(self) -> set[str]:
        return {p.symbol for p in self.pending.values()}

    def _expire_pending(self, now: datetime) -> None:
        for intent_id, entry in list(self.pending.items()):
            if now > entry.expires_at + timedelta(seconds=PENDING_GRACE_S):
                log.warning("entry %s on %s never reported done; no longer waiting for it", intent_id, entry.symbol)
                del self.pending[intent_id]

    def _nav_doc(self) -> NavState | None:
        assert self.subscriber is not None
        doc = self.subscriber.document("nav_state")
        return doc if isinstance(doc, NavState) else None

    def _router_doc(self) -> RouterState | None:
        assert self.subscriber is not None
        doc = self.subscriber.document("router_state")
        return doc if isinstance(doc, RouterState) else None

    # --- entries -------------------------------------------------------------------------------

    def _consider_entry(self, symbol: str, top: BookTop, instrument: Instrument,
                        positions: list[ExchangePosition], held: set[str], nav: NavState | None,
                        now: datetime) -> None:
        view = self.views.get(symbol)
        if view is None or view.direction == "FLAT" or symbol in held or symbol in self._pending_symbols():
            return
        if self.decided_bar.get(symbol) == view.bar_ts:
            return  # one decision per symbol per closed bar
        self.decided_bar[symbol] = view.bar_ts
        signal_id = new_intent_id("sg")
        self.publish(SignalGenerated(ts=now, signal_id=signal_id, symbol=symbol, direction=view.direction,
                                     score=view.score, factors=view.factors))
        self.m.signals.labels(symbol, view.direction).inc()
        blocked = self.store.entry_block(symbol)
        if blocked is not None:
            self._veto(signal_id, symbol, RiskDecision(*blocked), now)
            return
        dd_state = nav.dd_state if nav else "NORMAL"
        target = self.config.entry.position_nav_pct * self.model.conviction(view.score)
        if dd_state == "CAUTION":
            target *= self.config.entry.caution_size_factor
        pending_notional = sum(p.notional for p in self.pending.values())
        gross = sum(p.qty * p.mark_price for p in positions) + pending_notional
        decision = evaluate_entry(self.limits, RiskInputs(
            symbol=symbol, price=top.mid, lot_size=instrument.lot_size,
            nav=nav.nav_total if nav else None,
            nav_age_s=(now - nav.updated_at).total_seconds() if nav else None,
            dd_state=dd_state, open_positions=len(held) + len(self.pending),
            symbol_exposure=0.0, portfolio_exposure=gross, target_fraction=target,
            nav_sources_ok=nav.sources_ok if nav else False,
        ))
        if not decision.approved:
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
        self.book.plan_entry(intent, now)
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
            self.book.drop(symbol)

    def _veto(self, signal_id: str, symbol: str, decision: RiskDecision, now: datetime) -> None:
        assert decision.reason is not None
        self.veto_counts[decision.reason] += 1
        self.m.vetoes.labels(decision.reason).inc()
        self.publish(EntryVetoed(ts=now, signal_id=signal_id, symbol=symbol, reason=decision.reason,
                          detail=decision.detail))

    # --- publishing ----------------------------------------------------------------------------

    def _publish(self, now: datetime, rows: list[PositionRow], positions: list[ExchangePosition],
                 nav: NavState | None) -> None:
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
        midnight = utc_midnight(now)
        today = {s: self.fills.since(s, midnight) for s in symbols}
        realized = sum(r for r, _f in today.values())
        fees = sum(f for _r, f in today.values())
        fee_pnl_ratio = round(fees / abs(realized), 6) if abs(realized) > 1e-9 else None
        dd_state = nav.dd_state if nav else "NORMAL"

        scope = {"mode": self.settings.mode, "account": self.settings.account}
        self.publish(PositionsState(updated_at=now, positions=rows, **scope))  # type: ignore[arg-type]
        self.publish(self.book.ledger(positions, now, self.settings.mode, self.settings.account))
        self.publish(RiskSnapshot(
            updated_at=now, dd_state=dd_state, atr_regime=regime, var_nav_pct=_round(var), cvar_nav_pct=_round(cvar),
            fee_pnl_ratio=fee_pnl_ratio, caps=RiskCaps(**self.limits.caps.model_dump()),
            exposure_nav_pct={s: round(v, 10) for s, v in exposure.items()},
            portfolio_exposure_nav_pct=round(gross, 10), vetoes=dict(self.veto_counts),
        ))
        self.publish(FactorDiagnostics(
            updated_at=now, weights=self.model.weights,
            per_symbol={s: SymbolFactors(factors=v.factors, score=v.score, direction=v.direction)
                        for s, v in self.views.items()},
        ))
        if nav is not None:
            self.publish(build_kpis(
                now, nav, rows, symbols, today, _round(var), _round(cvar), regime, fee_pnl_ratio, self._router_doc(),
                self.performance.expectancy, self.performance.sharpe_state, self.store.pnl_scopes(),
            ))
            self.m.nav.set(nav.nav_total)
            self.m.drawdown.set(nav.dd_pct)
        self.m.open_positions.set(len(rows))
        self.m.pending_entries.set(len(self.pending))
        self.m.exposure.set(gross)
        self.m.unrealized.set(sum(r.unrealized_pnl for r in rows))

    def _make_scope_active(self) -> None:
        """Trade only in the active scope: make ours active on start (a switch closes nothing)."""
        switch = self.store.scope_switch_needed()
        if switch is not None:
            log.warning("active scope is %s/%s; switching it to %s/%s", self.store.active.mode,  # type: ignore[union-attr]
                        self.store.active.account, switch.mode, switch.account)  # type: ignore[union-attr]
            try:
                self.publish_durable(switch, timeout=10.0)
            except (TimeoutError, BusError) as exc:
                log.error("scope switch not confirmed (%s); retrying next loop", exc)
                return
            self.store.refresh()
        self._scope_checked = True

    def teardown(self) -> None:
        self.exchange.close()
