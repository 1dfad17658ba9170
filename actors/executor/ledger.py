"""The position ledger: which open position is which, with its bracket (TP/SL) and TTL.

A `Plan` is made when the executor sends an entry intent and lives until the position it
opened is flat again. Each loop `reconcile()` lines the plans up with the exchange positions:
a position nobody planned (opened by hand, or by an earlier run whose ledger was lost) is
adopted with an ATR bracket around its entry, so no open position ever goes without TP/SL.

`restore()` is the one way to rebuild the book after a restart: from the positions store's
open positions (the hub's positions_ledger document without one).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from actors.executor.strategy import SymbolView
from bus.messages import LedgerEntry, LedgerMetadata, PositionsLedger, SubmitOrder, TpSlLevels, utc_now
from config.strategy import EntryConfig
from domain.vocabulary import Direction, Mode
from exchange.adapter import ExchangePosition, Instrument
from exchange.ticks import round_to

log = logging.getLogger(__name__)

def new_position_id() -> str:
    return f"p-{uuid.uuid4().hex[:16]}"


def bracket(side: Direction, ref_price: float, atr: float, cfg: EntryConfig, tick: float) -> tuple[float, float]:
    """(tp, sl): take profit `tp_atr_mult` ATRs in the position's favour, stop `sl_atr_mult` against."""
    sign = 1.0 if side == "LONG" else -1.0
    tp = round_to(ref_price + sign * cfg.tp_atr_mult * atr, tick)
    sl = round_to(ref_price - sign * cfg.sl_atr_mult * atr, tick)
    return tp, max(sl, tick)


@dataclass
class Plan:
    symbol: str
    side: Direction
    position_id: str
    tp: float | None
    sl: float | None
    ttl_ts: datetime | None
    opened_at: datetime
    intent_id: str | None = None
    seen_open: bool = False
    adopted: bool = False


@dataclass
class ReconcileResult:
    closed: list[Plan] = field(default_factory=list)
    adopted: list[Plan] = field(default_factory=list)


class PositionBook:
    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}

    def restore(self, entries: Iterable[LedgerEntry]) -> None:
        """Rebuild from ledger entries (the recovery entry point). Existing plans are replaced."""
        self.plans = {
            e.symbol: Plan(symbol=e.symbol, side=e.side, position_id=e.position_id, tp=e.tp, sl=e.sl,
                           ttl_ts=e.ttl_ts, opened_at=e.opened_at or utc_now(),
                           seen_open=True)
            for e in entries
        }

    def plan_entry(self, intent: SubmitOrder, now: datetime) -> Plan:
        assert intent.position_id is not None  # entries always carry one
        plan = Plan(symbol=intent.symbol, side="LONG" if intent.side == "BUY" else "SHORT",
                    position_id=intent.position_id, tp=intent.tp, sl=intent.sl, ttl_ts=intent.ttl_ts,
                    opened_at=now, intent_id=intent.intent_id)
        self.plans[intent.symbol] = plan
        return plan

    def drop(self, symbol: str) -> None:
        self.plans.pop(symbol, None)

    def reconcile(
        self,
        positions: Iterable[ExchangePosition],
        pending_symbols: set[str],
        views: Mapping[str, SymbolView],
        instruments: Mapping[str, Instrument],
        now: datetime,
        cfg: EntryConfig,
    ) -> ReconcileResult:
        result = ReconcileResult()
        by_symbol = {p.symbol: p for p in positions}
        for symbol, plan in list(self.plans.items()):
            pos = by_symbol.get(symbol)
            if pos is not None and pos.side == plan.side:
                plan.seen_open = True
            elif pos is not None or plan.seen_open:  # closed (or flipped: closed, then another opened)
                result.closed.append(self.plans.pop(symbol))
            elif symbol not in pending_symbols:  # the entry ended without a fill
                del self.plans[symbol]
        for symbol, pos in by_symbol.items():
            if symbol in self.plans:
                continue
            view = views.get(symbol)
            instrument = instruments.get(symbol)
            if view is None or instrument is None:
                continue  # adopt next loop, once there is an ATR to size the bracket with
            tp, sl = bracket(pos.side, pos.entry_price, view.atr, cfg, instrument.tick_size)
            plan = Plan(symbol=symbol, side=pos.side, position_id=new_position_id(), tp=tp, sl=sl,
                        ttl_ts=now + timedelta(seconds=cfg.ttl_s), opened_at=pos.opened_at or now,
                        seen_open=True, adopted=True)
            self.plans[symbol] = plan
            result.adopted.append(plan)
            log.warning("adopted unplanned %s %s %.8g @ %.8g with tp=%s sl=%s", pos.side, symbol, pos.qty,
                        pos.entry_price, tp, sl)
        return result

    def ledger(self, positions: Iterable[ExchangePosition], now: datetime, mode: Mode, account: str) -> PositionsLedger:
        """positions_ledger: one entry per open exchange position, with its plan's levels."""
        entries = []
        levels = {}
        for pos in positions:
            plan = self.plans.get(pos.symbol)
            if plan is None or plan.side != pos.side:
                entries.append(LedgerEntry(symbol=pos.symbol, side=pos.side, position_id=f"unplanned-{pos.symbol}",
                                           qty=pos.qty, entry_price=pos.entry_price, opened_at=pos.opened_at))
                continue
            entries.append(LedgerEntry(symbol=pos.symbol, side=pos.side, position_id=plan.position_id, qty=pos.qty,
                                       entry_price=pos.entry_price, tp=plan.tp, sl=plan.sl, ttl_ts=plan.ttl_ts,
                                       opened_at=plan.opened_at))
            if plan.tp is not None or plan.sl is not None:
                levels[pos.symbol] = TpSlLevels(tp=plan.tp, sl=plan.sl)
        return PositionsLedger(updated_at=now, mode=mode, account=account, entries=entries, tp_sl_levels=levels,
                            metadata=LedgerMetadata(version="v1", entry_count=len(entries)))
