"""The one set of message factories of the test suite: valid bus messages with test defaults.

State documents (`position`, `positions`, `sample_ledger`, `kpis`), trading events (`intent`, `fill`),
the store's inputs (`marks`, `ledger`, `scope_of`) and `heartbeat`. Wire-level dicts that tests build
on purpose (raw frames, protocol examples) stay beside those tests; tests/dashboard/samples.py holds
the page's sample documents, whose values the page tests assert.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from bus.messages import (
    Heartbeat,
    Kpis,
    LedgerEntry,
    LedgerMetadata,
    OrderFilled,
    PortfolioKpis,
    PositionRow,
    PositionsLedger,
    PositionsState,
    Scope,
    SubmitOrder,
    SymbolKpis,
    TpSlLevels,
    utc_now,
)
from tests import SIM_SCOPE

# --- state documents ---------------------------------------------------------------------------------


def position(symbol: str = "BTCUSDT", qty: float = 0.01, entry: float = 42000.0, mark: float = 43000.0,
             realized: float = 0.0) -> PositionRow:
    side = "LONG" if qty > 0 else "FLAT"
    return PositionRow(symbol=symbol, side=side, qty=qty, entry_price=entry, mark_price=mark,
                       notional=abs(qty * mark), realized_pnl=realized, unrealized_pnl=(mark - entry) * qty)


def positions(*rows: PositionRow) -> PositionsState:
    return PositionsState(scope=SIM_SCOPE, positions=list(rows))


def sample_ledger(n: int = 1) -> PositionsLedger:
    """A SIM ledger of `n` (0..3) LONG entries with TP/SL levels."""
    entries = [LedgerEntry(symbol=s, side="LONG", position_id=f"p{i}", qty=0.1, entry_price=100.0 + i, tp=120.0,
                           sl=90.0) for i, s in enumerate(["BTCUSDT", "ETHUSDT", "SOLUSDT"][:n])]
    return PositionsLedger(scope=SIM_SCOPE, entries=entries,
                           tp_sl_levels={e.symbol: TpSlLevels(tp=e.tp, sl=e.sl) for e in entries},
                           metadata=LedgerMetadata(entry_count=len(entries)))


def kpis() -> Kpis:
    return Kpis(scope=SIM_SCOPE,
        portfolio=PortfolioKpis(nav=4093.43, dd_pct=0.0326, var_nav_pct=0.0056, cvar_nav_pct=0.007),
                       per_symbol={"BTCUSDT": SymbolKpis(pnl=12.34, pnl_pct=0.0123, exposure_nav_pct=0.1)})


def heartbeat(actor: str = "executor", *, pid: int | None = None, started_at: datetime | None = None,
              interval_s: float = 1.0, **kw: Any) -> Heartbeat:
    return Heartbeat(actor=actor, pid=os.getpid() if pid is None else pid,
                     started_at=utc_now() if started_at is None else started_at, interval_s=interval_s, **kw)


# --- trading events and the store's inputs ------------------------------------------------------------


def intent(intent_id: str, symbol: str, side: str, qty: float, **kw: Any) -> SubmitOrder:
    kw.setdefault("mode", "SIM")
    kw.setdefault("account", "paper")
    return SubmitOrder(intent_id=intent_id, symbol=symbol, side=side, qty=qty, **kw)


def fill(trade_id: str, intent_id: str, symbol: str, side: str, qty: float, price: float, **kw: Any) -> OrderFilled:
    kw.setdefault("liquidity", "taker")
    kw.setdefault("mode", "SIM")
    kw.setdefault("account", "paper")
    return OrderFilled(trade_id=trade_id, order_id=f"o-{trade_id}", intent_id=intent_id, symbol=symbol, side=side,
                qty=qty, price=price, **kw)


def marks(mode: str = "SIM", account: str = "paper", **prices: float) -> PositionsState:
    return PositionsState(scope=scope_of(mode, account), positions=[
        PositionRow(symbol=s, side="LONG", qty=1.0, entry_price=p, mark_price=p, notional=p, unrealized_pnl=0.0)
        for s, p in prices.items()])


def ledger(*entries: dict[str, Any], mode: str = "SIM", account: str = "paper") -> PositionsLedger:
    rows = [LedgerEntry(**{"side": "LONG", "qty": 1.0, "entry_price": 1.0, **e}) for e in entries]
    return PositionsLedger(scope=scope_of(mode, account), entries=rows,
                           metadata=LedgerMetadata(entry_count=len(rows)))


def scope_of(mode: str, account: str) -> Scope:
    return Scope(mode=mode, network="paper" if mode != "LIVE" else "testnet", account=account)  # type: ignore[arg-type]
