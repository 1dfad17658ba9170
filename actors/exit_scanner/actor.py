"""The exit scanner loop: each scan reads positions and marks from the exchange, checks every
position against its registered TP/SL/TTL, sends a durable reduce-only exit trigger (routed
by the router) for each one that must close, and reports coverage in an exit scan status.

A position with an exit in flight is not triggered again until that exit has finished and
the position is still open `retrigger_after_s` later (a partial or rejected exit).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from actors.base import Actor
from actors.exit_scanner.metrics import ExitMetrics
from actors.exit_scanner.registry import Registry
from bus.codec import BusError
from bus.messages import (
    ExitScanCompleted,
    LedgerEntry,
    OrderUpdated,
    PositionsLedger,
    RequestExit,
    SubmitOrder,
    stored_in_scope,
    utc_now,
)
from bus.subscriber import Update
from config.settings import Settings
from config.strategy import load_strategy_config
from domain.vocabulary import closing_side
from exchange.adapter import ExchangePosition
from exchange.client import connect_exchange
from exchange.errors import ExchangeError

log = logging.getLogger(__name__)


@dataclass
class Inflight:
    intent_id: str
    position_id: str
    done_at: datetime | None = None


class ExitScanner(Actor):
    name = "exit_scanner"
    default_loop_s = 0.5
    wants_updates = True
    subscribe_keys = ("positions_ledger", "pending_intents", "open_positions")
    subscribe_topics = (SubmitOrder.TYPE, RequestExit.TYPE, OrderUpdated.TYPE, PositionsLedger.TYPE)

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.config = load_strategy_config(settings).exits
        super().__init__(settings, serve_metrics=serve_metrics)
        self.exchange = connect_exchange(settings)
        self.tpsl = Registry()  # (self.registry is the Prometheus one)
        self.ledger: list[LedgerEntry] = []
        self.inflight: dict[str, Inflight] = {}
        self.ready = False
        self.m = ExitMetrics(self.registry)

    # --- recovery and intake -------------------------------------------------------------------

    def restore(self, entries: Iterable[LedgerEntry], pending: Iterable[Mapping]) -> None:
        """Rebuild the TP/SL registry and in-flight exits. The one recovery entry point."""
        now = utc_now()
        entries = list(entries)
        self.ledger = entries
        self.tpsl.restore(entries, now)
        self._absorb_pending(pending, now)
        self.ready = True
        log.info("restored %d registered positions, %d exits in flight", len(self.tpsl.by_symbol),
                 len(self.inflight))

    def _mine(self, mode: str, account: str) -> bool:
        return (mode, account) == (self.settings.mode, self.settings.account)

    def _absorb_pending(self, pending: Iterable[Mapping], now: datetime) -> None:
        for raw in pending:
            body = {k: v for k, v in raw.items() if k != "seq"}
            if body.get("type") == SubmitOrder.TYPE:
                intent = SubmitOrder.model_validate(body)
                if self._mine(intent.mode, intent.account):
                    self.tpsl.register_intent(intent, now)
            elif body.get("type") == RequestExit.TYPE:
                trigger = RequestExit.model_validate(body)
                if self._mine(trigger.mode, trigger.account):
                    self.inflight[trigger.symbol] = Inflight(trigger.intent_id, trigger.position_id)

    def on_resync(self) -> None:
        assert self.subscriber is not None
        pending = self.subscriber.snapshot_state.get("pending_intents") or []
        ledger = self.subscriber.document("positions_ledger")
        entries = ledger.entries if isinstance(ledger, PositionsLedger) else []
        if not self.ready:
            # The positions store has every open position of our scope with its TP/SL and TTL,
            # whatever the last ledger file said; the ledger is the fallback without a store.
            stored = stored_in_scope(self.subscriber.snapshot_state.get("open_positions"), self.settings.mode,
                                     self.settings.account)
            self.restore([LedgerEntry.of_stored(p) for p in stored] if stored is not None else entries, pending)
            return
        self.ledger = entries
        live = {raw.get("intent_id") for raw in pending}
        for flight in self.inflight.values():
            if flight.done_at is None and flight.intent_id not in live:
                flight.done_at = utc_now()  # finished while we were not listening
        self._absorb_pending(pending, utc_now())

    def on_update(self, update: Update) -> None:
        msg = update.msg
        if isinstance(msg, SubmitOrder) and self._mine(msg.mode, msg.account):
            self.tpsl.register_intent(msg, utc_now())
        elif isinstance(msg, RequestExit) and self._mine(msg.mode, msg.account):
            self.inflight.setdefault(msg.symbol, Inflight(msg.intent_id, msg.position_id))
        elif isinstance(msg, OrderUpdated) and msg.intent_done:
            for flight in self.inflight.values():
                if flight.intent_id == msg.intent_id:
                    flight.done_at = utc_now()
        elif isinstance(msg, PositionsLedger):
            self.ledger = list(msg.entries)

    # --- the scan ------------------------------------------------------------------------------

    def step(self) -> None:
        if not self.ready:
            self.status_detail = "waiting for the hub snapshot"
            return
        try:
            positions = self.exchange.fetch_positions()
        except ExchangeError as exc:
            self.m.exchange_errors.inc()
            if self.status != "degraded":
                log.warning("exchange not answering (%s); no scan", exc)
            self.status, self.status_detail = "degraded", f"exchange: {exc}"[:500]
            return
        self.status, self.status_detail = "running", ""
        # An entry intent is committed (and published) before the router can fill it, so any
        # position just fetched has its intent waiting in our socket: take it in before judging.
        self._pump_updates(0.0)
        now = utc_now()
        self.tpsl.sync(positions, self.ledger, now)
        open_symbols = {p.symbol for p in positions}
        for symbol in [s for s in self.inflight if s not in open_symbols and self.inflight[s].done_at is not None]:
            del self.inflight[symbol]
        triggers = sum(1 for position in positions if self._scan_one(position, now))
        self._report(positions, triggers, now)

    def _scan_one(self, position: ExchangePosition, now: datetime) -> bool:
        flight = self.inflight.get(position.symbol)
        if flight is not None:
            if flight.done_at is None or now - flight.done_at < timedelta(seconds=self.config.retrigger_after_s):
                return False
            del self.inflight[position.symbol]  # the exit finished and the position is still open
        levels = self.tpsl.levels_for(position)
        if levels is None:
            return False
        hit = levels.check(position.mark_price, now)
        if hit is None:
            return False
        reason, level = hit
        trigger = RequestExit(
            ts=now, intent_id=f"ex-{uuid.uuid4().hex[:20]}", mode=self.settings.mode,  # type: ignore[arg-type]
            account=self.settings.account, symbol=position.symbol, position_id=levels.position_id, reason=reason,
            side=closing_side(position.side), qty=position.qty, mark_price=position.mark_price, level=level,
        )
        self.inflight[position.symbol] = Inflight(trigger.intent_id, levels.position_id)
        self.m.triggers.labels(reason).inc()
        log.info("exit %s %s %s qty=%g mark=%.8g level=%s", reason, position.side, position.symbol, position.qty,
                 position.mark_price, level)
        try:
            self.publish_durable(trigger, timeout=10.0)
        except TimeoutError:
            log.warning("exit %s not ACKed yet; it stays queued and will be delivered", trigger.intent_id)
        except BusError as exc:
            log.error("hub refused exit %s: %s", trigger.intent_id, exc)
            del self.inflight[position.symbol]
        return True

    def _report(self, positions: list[ExchangePosition], triggers: int, now: datetime) -> None:
        missing = [p for p in positions if not ((lv := self.tpsl.levels_for(p)) and lv.protected)]
        registered = len(positions) - len(missing)
        underwater = sum(1 for p in missing if p.unrealized_pnl < 0)
        mismatched = self.tpsl.mismatches(positions, self.ledger)
        coverage = registered / len(positions) if positions else 0.0
        mismatch = bool(missing) or bool(mismatched)
        self.publish(ExitScanCompleted(
            ts=now, open_positions_count=len(positions), tp_sl_registered_count=registered,
            tp_sl_missing_count=len(missing), underwater_without_tp_sl_count=underwater,
            tp_sl_coverage_pct=coverage, ledger_registry_mismatch=mismatch, triggers=triggers,
            missing_symbols=sorted({p.symbol for p in missing} | set(mismatched)),
        ))
        self.m.scans.inc()
        self.m.open_positions.set(len(positions))
        self.m.coverage.set(coverage)
        self.m.missing.set(len(missing))
        self.m.underwater_unprotected.set(underwater)
        self.m.mismatch.set(1 if mismatch else 0)

    def teardown(self) -> None:
        self.exchange.close()
