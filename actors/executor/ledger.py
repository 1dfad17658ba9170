"""The position ledger (positions_ledger.json): every open position of this scope with its bracket.

The positions come from the positions store (the hub's `open_positions` view, committed
fills): the executor keeps no position arithmetic of its own. A position's levels are the
ones its entry intent carried (the store took them from the intent). A position without a
full bracket (adopted by reconciliation, imported, or opened by hand) gets an ATR bracket
around its entry once the strategy has an ATR for its symbol: the ledger names it, and the
store applies it when the ledger is committed, so no open position goes without TP/SL.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from actors.executor.strategy import SymbolView
from bus.messages import LedgerEntry, LedgerMetadata, PositionsLedger, Scope, StoredPosition, TpSlLevels
from config.strategy import EntryConfig
from domain.vocabulary import Direction
from exchange.adapter import Instrument
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


@dataclass(frozen=True, slots=True)
class Bracket:
    tp: float
    sl: float
    ttl_ts: datetime


class LedgerBook:
    def __init__(self) -> None:
        self.positions: dict[str, StoredPosition] = {}  # this scope's open positions, by symbol
        self.adopted: dict[str, Bracket] = {}  # position id -> the bracket given to it
        self.adoptions = 0

    def replace(self, positions: Iterable[StoredPosition]) -> list[StoredPosition]:
        """The store's open positions now; returns the ones that closed since the last view."""
        now_open = {p.symbol: p for p in positions if p.qty > 0}
        closed = [p for s, p in self.positions.items() if s not in now_open
                  or now_open[s].position_id != p.position_id]
        self.positions = now_open
        live = {p.position_id for p in now_open.values()}
        self.adopted = {pid: b for pid, b in self.adopted.items() if pid in live}
        return closed

    def adopt(self, views: Mapping[str, SymbolView], instruments: Mapping[str, Instrument], now: datetime,
              cfg: EntryConfig) -> None:
        """Give every open position without a full bracket an ATR bracket around its entry."""
        for symbol, p in self.positions.items():
            if (p.tp and p.sl) or p.position_id in self.adopted:
                continue
            view, instrument = views.get(symbol), instruments.get(symbol)
            if view is None or instrument is None:
                continue  # next time, once there is an ATR to size the bracket with
            tp, sl = bracket(p.side, p.entry_price, view.atr, cfg, instrument.tick_size)
            self.adopted[p.position_id] = Bracket(tp, sl, p.ttl_ts or now + timedelta(seconds=cfg.ttl_s))
            self.adoptions += 1
            log.warning("gave %s %s %s (%.8g @ %.8g) a bracket: tp=%s sl=%s", p.side, symbol, p.position_id, p.qty,
                        p.entry_price, tp, sl)

    def ledger(self, now: datetime, scope: Scope) -> PositionsLedger:
        entries, levels = [], {}
        for symbol, p in sorted(self.positions.items()):
            given = self.adopted.get(p.position_id)
            tp = (p.tp or None) if given is None else (p.tp or given.tp)
            sl = (p.sl or None) if given is None else (p.sl or given.sl)
            ttl = p.ttl_ts if given is None else (p.ttl_ts or given.ttl_ts)
            entries.append(LedgerEntry(symbol=symbol, side=p.side, position_id=p.position_id, qty=p.qty,
                                       entry_price=p.entry_price, tp=tp, sl=sl, ttl_ts=ttl, opened_at=p.entry_time))
            if tp is not None or sl is not None:
                levels[symbol] = TpSlLevels(tp=tp, sl=sl)
        return PositionsLedger(scope=scope, updated_at=now, entries=entries, tp_sl_levels=levels,
                               metadata=LedgerMetadata(version="v1", entry_count=len(entries)))
