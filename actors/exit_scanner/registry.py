"""The exit registry: every open position of this scope with the levels it must exit at.

The positions and their levels come from the positions store (the hub's `open_positions`
view, published on the commit of every fill and ledger change): a position exists here once
its first fill is committed, with the TP, SL and TTL its entry intent carried (or that the
executor's ledger set later, for adopted positions). The scanner adds nothing of its own;
it only reads the mark the market stream brings and decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from actors.exit_scanner.rules import ExitLevels
from bus.messages import LedgerEntry, StoredPosition
from domain.positions import unrealized_pnl


@dataclass(frozen=True, slots=True)
class Held:
    """One open position as the store has it, with its exit levels."""

    position: StoredPosition
    levels: ExitLevels

    @property
    def protected(self) -> bool:
        return self.levels.protected

    def unrealized_at(self, mark: float) -> float:
        p = self.position
        return unrealized_pnl(p.side, p.qty, p.entry_price, mark)


class Registry:
    def __init__(self) -> None:
        self.by_symbol: dict[str, Held] = {}

    def replace(self, positions: Iterable[StoredPosition]) -> None:
        """The store's open positions of this scope, as the latest view has them."""
        self.by_symbol = {
            p.symbol: Held(p, ExitLevels(p.symbol, p.side, p.position_id, p.tp or None, p.sl or None, p.ttl_ts,
                                         "store"))
            for p in positions if p.qty > 0
        }

    def ledger_disagreements(self, ledger: Iterable[LedgerEntry]) -> list[str]:
        """Open symbols whose ledger entry (the executor's document) disagrees with the store's
        levels: position id, side or TP/SL. Reported on its own, apart from TP/SL coverage."""
        out = []
        for entry in ledger:
            held = self.by_symbol.get(entry.symbol)
            if held is None:
                continue
            levels = held.levels
            if (entry.position_id, entry.side, entry.tp, entry.sl) != (levels.position_id, levels.side, levels.tp,
                                                                        levels.sl):
                out.append(entry.symbol)
        return sorted(out)
