"""The exit scanner: checks every open position against its TP/SL on every mark, and its TTL.

Inputs, each acted on when it arrives:
- the market stream: a new mark of a symbol is checked against that symbol's position at
  once; a crossed stop leaves as a durable `request_exit` (reduce-only, routed by the router)
  in the same handler, journaled before the router sees it;
- the hub's `open_positions` view (published on the commit of every fill and ledger change):
  the positions of this scope with their levels (exit_scanner/registry.py);
- hub topics `request_exit` (its own, as committed) and `order_updated` (an exit finished);
- timers: the TTL check every second, and `exit_scan_completed` (coverage, seed 004 §3) every
  `loop_s`.

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
from actors.exit_scanner.registry import Held, Registry
from bus.codec import BusError
from bus.messages import (
    ExitScanCompleted,
    OrderUpdated,
    PositionsLedger,
    RequestExit,
    stored_in_scope,
    utc_now,
)
from bus.subscriber import Update
from config.settings import Settings
from config.strategy import load_strategy_config
from domain.vocabulary import closing_side
from exchange.client import connect_exchange
from exchange.streams import BookTicked, ExchangeSnapshot

log = logging.getLogger(__name__)

OPEN_POSITIONS = "open_positions"
TTL_CHECK_S = 1.0


@dataclass
class Inflight:
    intent_id: str
    position_id: str
    done_at: datetime | None = None


class ExitScanner(Actor):
    name = "exit_scanner"
    default_loop_s = 0.5
    wants_updates = True
    subscribe_keys = ("positions_ledger", "pending_intents", OPEN_POSITIONS)
    subscribe_topics = (RequestExit.TYPE, OrderUpdated.TYPE)
    exchange_streams = ("market",)

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        self.config = load_strategy_config(settings).exits
        super().__init__(settings, serve_metrics=serve_metrics)
        self.exchange = connect_exchange(settings)
        self.tpsl = Registry()  # (self.registry is the Prometheus one)
        self.marks: dict[str, float] = {}
        self.inflight: dict[str, Inflight] = {}
        self.triggers = 0
        self.m = ExitMetrics(self.registry)

    def setup(self) -> None:
        self.open_exchange_streams(self.exchange)
        self.every(TTL_CHECK_S, self._check_all, "ttl_check")
        self.every(self.loop_s, self._report, "exit_scan_completed")

    # --- positions and in-flight exits from the hub ------------------------------------------------

    def _mine(self, mode: str, account: str) -> bool:
        return (mode, account) == (self.settings.mode, self.settings.account)

    def on_resync(self) -> None:
        assert self.subscriber is not None
        state = self.subscriber.snapshot_state
        self.on_view(OPEN_POSITIONS, state.get(OPEN_POSITIONS))
        pending = state.get("pending_intents") or []
        self._absorb_pending(pending)
        live = {raw.get("intent_id") for raw in pending}
        for flight in self.inflight.values():
            if flight.done_at is None and flight.intent_id not in live:
                flight.done_at = utc_now()  # finished while we were not listening

    def _absorb_pending(self, pending: Iterable[Mapping]) -> None:
        for raw in pending:
            body = {k: v for k, v in raw.items() if k != "seq"}
            if body.get("type") == RequestExit.TYPE:
                trigger = RequestExit.model_validate(body)
                if self._mine(trigger.mode, trigger.account):
                    self.inflight.setdefault(trigger.symbol, Inflight(trigger.intent_id, trigger.position_id))

    def on_view(self, key: str, value: object) -> None:
        if key != OPEN_POSITIONS or value is None:
            return
        stored = stored_in_scope(value, self.settings.mode, self.settings.account)  # type: ignore[arg-type]
        self.tpsl.replace(stored or [])
        for symbol in [s for s, f in self.inflight.items() if s not in self.tpsl.by_symbol and f.done_at is not None]:
            del self.inflight[symbol]
        for symbol in self.tpsl.by_symbol:
            self._check(symbol)  # a position that opened beyond its stop is closed on the first look

    def on_update(self, update: Update) -> None:
        msg = update.msg
        if isinstance(msg, RequestExit) and self._mine(msg.mode, msg.account):
            self.inflight.setdefault(msg.symbol, Inflight(msg.intent_id, msg.position_id))
        elif isinstance(msg, OrderUpdated) and msg.intent_done:
            for flight in self.inflight.values():
                if flight.intent_id == msg.intent_id:
                    flight.done_at = utc_now()

    # --- marks from the market stream ------------------------------------------------------------

    def on_market(self, event: object) -> None:
        if isinstance(event, BookTicked):
            self.marks[event.top.symbol] = event.top.mark
            self._check(event.top.symbol)

    def on_exchange_resync(self, snapshot: ExchangeSnapshot, reason: str) -> None:
        self.marks.update({s: top.mark for s, top in snapshot.tops.items()})
        self._check_all()

    # --- deciding --------------------------------------------------------------------------------

    def _check_all(self) -> None:
        for symbol in list(self.tpsl.by_symbol):
            self._check(symbol)

    def _check(self, symbol: str) -> None:
        if not self.ready:
            return
        held = self.tpsl.by_symbol.get(symbol)
        mark = self.marks.get(symbol)
        if held is None or mark is None:
            return
        now = utc_now()
        flight = self.inflight.get(symbol)
        if flight is not None:
            if flight.done_at is None or now - flight.done_at < timedelta(seconds=self.config.retrigger_after_s):
                return
            del self.inflight[symbol]  # the exit finished and the position is still open
        hit = held.levels.check(mark, now)
        if hit is not None:
            self._trigger(held, mark, hit[0], hit[1], now)

    def _trigger(self, held: Held, mark: float, reason: str, level: float | None, now: datetime) -> None:
        p = held.position
        trigger = RequestExit(
            ts=now, intent_id=f"ex-{uuid.uuid4().hex[:20]}", mode=p.mode, account=p.account, symbol=p.symbol,
            position_id=p.position_id, reason=reason, side=closing_side(p.side), qty=p.qty,  # type: ignore[arg-type]
            mark_price=mark, level=level,
        )
        self.inflight[p.symbol] = Inflight(trigger.intent_id, p.position_id)
        self.triggers += 1
        self.m.triggers.labels(reason).inc()
        log.info("exit %s %s %s qty=%g mark=%.8g level=%s", reason, p.side, p.symbol, p.qty, mark, level)
        try:
            self.publish_durable(trigger, timeout=10.0)
        except TimeoutError:
            log.warning("exit %s not ACKed yet; it stays queued and will be delivered", trigger.intent_id)
        except BusError as exc:
            log.error("hub refused exit %s: %s", trigger.intent_id, exc)
            del self.inflight[p.symbol]

    # --- coverage (seed 004 §3) --------------------------------------------------------------------

    def _report(self) -> None:
        if not self.ready:
            self.status_detail = "waiting for the hub snapshot"
            return
        if not self.stream_ready:
            self.degrade("waiting for the exchange market stream")
        elif self.status == "degraded":
            self.recover()
        held = list(self.tpsl.by_symbol.values())
        missing = [h for h in held if not h.protected]
        registered = len(held) - len(missing)
        underwater = sum(1 for h in missing if (m := self.marks.get(h.position.symbol)) and h.unrealized_at(m) < 0)
        assert self.subscriber is not None
        ledger = self.subscriber.document("positions_ledger")
        disagree = self.tpsl.ledger_disagreements(ledger.entries) if isinstance(ledger, PositionsLedger) else []
        coverage = registered / len(held) if held else 0.0
        triggers, self.triggers = self.triggers, 0
        self.publish(ExitScanCompleted(
            open_positions_count=len(held), tp_sl_registered_count=registered, tp_sl_missing_count=len(missing),
            underwater_without_tp_sl_count=underwater, tp_sl_coverage_pct=coverage,
            ledger_registry_mismatch=bool(missing), triggers=triggers,
            missing_symbols=sorted(h.position.symbol for h in missing), ledger_disagreement_symbols=disagree,
        ))
        self.m.scans.inc()
        self.m.open_positions.set(len(held))
        self.m.coverage.set(coverage)
        self.m.missing.set(len(missing))
        self.m.underwater_unprotected.set(underwater)
        self.m.mismatch.set(1 if missing else 0)
        self.m.disagreements.set(len(disagree))
        for symbol in [s for s, f in self.inflight.items() if s not in self.tpsl.by_symbol and f.done_at is not None]:
            del self.inflight[symbol]

    def teardown(self) -> None:
        self.exchange.close()
