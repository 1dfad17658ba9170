"""Store vs exchange: which symbols disagree, and how. Pure; the policy is applied in `reconciliation.py`.

Only symbols the report lists are compared: a symbol the exchange did not report on is
unknown, never flat. Entry prices are not compared (exchanges average differently); side
and size are.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.state_writer.store.positions import Position
from bus.messages import ExchangePositionsReported, MismatchKind, ReportedPosition


@dataclass(frozen=True, slots=True, kw_only=True)
class Mismatch:
    symbol: str
    kind: MismatchKind
    store: Position | None
    exchange: ReportedPosition | None

    def detail(self) -> str:
        s = f"{self.store.side} {self.store.qty:g}" if self.store else "flat"
        e = f"{self.exchange.side} {self.exchange.qty:g}" if self.exchange else "flat"
        return f"store {s}, exchange {e}"


def compare(
    open_in_scope: dict[str, Position], report: ExchangePositionsReported, qty_tolerance: float
) -> tuple[list[Mismatch], list[str]]:
    """(mismatches, symbols that agree) for the symbols in the report."""
    exchange = {p.symbol: p for p in report.positions}
    mismatches: list[Mismatch] = []
    agreed: list[str] = []
    for symbol in dict.fromkeys(report.symbols):
        store, ex = open_in_scope.get(symbol), exchange.get(symbol)
        if store is None and ex is None:
            agreed.append(symbol)
        elif ex is None:
            mismatches.append(Mismatch(symbol=symbol, kind="store_only", store=store, exchange=None))
        elif store is None:
            mismatches.append(Mismatch(symbol=symbol, kind="exchange_only", store=None, exchange=ex))
        elif store.side != ex.side:
            mismatches.append(Mismatch(symbol=symbol, kind="side_mismatch", store=store, exchange=ex))
        elif abs(store.qty - ex.qty) > qty_tolerance * max(store.qty, ex.qty):
            mismatches.append(Mismatch(symbol=symbol, kind="qty_mismatch", store=store, exchange=ex))
        else:
            agreed.append(symbol)
    return mismatches, agreed
