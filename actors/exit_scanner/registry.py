"""The TP/SL registry: the exit scanner's own memory of every position's levels.

Levels are registered from entry intents as they are committed (before the position even
exists), and taken from the executor's ledger for positions the registry does not know
(adopted positions, or a scanner that restarted). `restore()` is the one recovery entry
point: from the positions store's open positions (the hub's ledger document without one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from actors.exit_scanner.rules import ExitLevels
from bus.messages import LedgerEntry, SubmitOrder
from exchange.adapter import ExchangePosition

UNSEEN_KEEP = timedelta(minutes=10)  # levels of an entry that never filled are forgotten after this


@dataclass
class Registered:
    levels: ExitLevels
    registered_at: datetime
    seen: bool = False  # a position with these levels has been seen open


def from_ledger(entry: LedgerEntry) -> ExitLevels:
    return ExitLevels(entry.symbol, entry.side, entry.position_id, entry.tp, entry.sl, entry.ttl_ts, "ledger")


class Registry:
    def __init__(self) -> None:
        self.by_symbol: dict[str, Registered] = {}

    def restore(self, entries: Iterable[LedgerEntry], now: datetime) -> None:
        self.by_symbol = {e.symbol: Registered(from_ledger(e), now, seen=True) for e in entries}

    def register_intent(self, intent: SubmitOrder, now: datetime) -> None:
        if intent.purpose != "entry" or intent.position_id is None:
            return
        side = "LONG" if intent.side == "BUY" else "SHORT"
        levels = ExitLevels(intent.symbol, side, intent.position_id, intent.tp, intent.sl, intent.ttl_ts)
        self.by_symbol[intent.symbol] = Registered(levels, now)

    def levels_for(self, position: ExchangePosition) -> ExitLevels | None:
        reg = self.by_symbol.get(position.symbol)
        return reg.levels if reg is not None and reg.levels.side == position.side else None

    def sync(self, positions: Iterable[ExchangePosition], ledger: Iterable[LedgerEntry], now: datetime) -> None:
        """Mark what is open, adopt ledger levels for unknown positions, forget closed ones."""
        open_by_symbol = {p.symbol: p for p in positions}
        ledger_by_symbol = {e.symbol: e for e in ledger}
        for symbol, position in open_by_symbol.items():
            reg = self.by_symbol.get(symbol)
            if reg is not None and reg.levels.side == position.side:
                reg.seen = True
                continue
            entry = ledger_by_symbol.get(symbol)
            if entry is not None and entry.side == position.side and (entry.tp is not None or entry.sl is not None):
                self.by_symbol[symbol] = Registered(from_ledger(entry), now, seen=True)
        for symbol, reg in list(self.by_symbol.items()):
            if symbol in open_by_symbol:
                continue
            if reg.seen or now - reg.registered_at > UNSEEN_KEEP:
                del self.by_symbol[symbol]

    def mismatches(self, positions: Iterable[ExchangePosition], ledger: Iterable[LedgerEntry]) -> list[str]:
        """Open symbols whose ledger entry disagrees with the registry (position id or levels)."""
        ledger_by_symbol = {e.symbol: e for e in ledger}
        out = []
        for position in positions:
            levels = self.levels_for(position)
            entry = ledger_by_symbol.get(position.symbol)
            if levels is None or entry is None or entry.side != position.side:
                continue
            if (entry.position_id, entry.tp, entry.sl) != (levels.position_id, levels.tp, levels.sl):
                out.append(position.symbol)
        return out
