"""The message every benchmark moves: a two-row positions snapshot (~440 bytes of msgpack)."""

from __future__ import annotations

from bus.messages import PositionRow, PositionsState, Scope


def positions(i: int = 0) -> PositionsState:
    rows = [
        PositionRow(symbol="BTCUSDT", side="LONG", qty=0.01, entry_price=42000.0, mark_price=43000.0 + i % 100,
                    notional=430.0, realized_pnl=float(i), unrealized_pnl=10.0, leverage=3.0),
        PositionRow(symbol="ETHUSDT", side="SHORT", qty=1.5, entry_price=2300.0, mark_price=2290.0,
                    notional=3435.0, realized_pnl=0.0, unrealized_pnl=15.0, leverage=3.0),
    ]
    return PositionsState(scope=Scope(mode="SIM", network="paper", account="paper"), positions=rows)
