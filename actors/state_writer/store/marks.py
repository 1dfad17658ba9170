"""The executor's documents as they touch stored positions: marks (trade extremes) and TP/SL/TTL.

Each document names its scope (mode, account); it touches only that scope's positions.
Marks are exact in memory and reach the database lazily (`dirty_since_seq`, written by the
store at most every `store.extremes_flush_s`); a TP/SL/TTL change is written at once.
"""

from __future__ import annotations

from typing import Any

from actors.state_writer.hooks import Committed
from actors.state_writer.store.state import StoreState
from actors.state_writer.store.unit import Unit
from bus.messages import PositionsLedger, PositionsState


def on_marks(st: StoreState, seq: int, msg: PositionsState) -> bool:
    """Widen the positions' extremes and move their marks; True if any position changed."""
    moved_any = False
    for row in msg.positions:
        p = st.positions.get((msg.mode, msg.account, row.symbol))
        # A mark older than the position belongs to an earlier trade (possible only in replay).
        if p is None or row.mark_price <= 0 or seq <= p.opened_seq:
            continue
        moved = p.mark_price != row.mark_price
        p.mark_price = row.mark_price
        if p.observe(row.mark_price) or moved:
            moved_any = True
            if p.dirty_since_seq is None:
                p.dirty_since_seq = seq
    return moved_any


def on_ledger(st: StoreState, unit: Unit, c: Committed, msg: PositionsLedger) -> None:
    """TP/SL/TTL changes of the ledger's positions. A missing level never erases one."""
    for entry in msg.entries:
        p = st.positions.get((msg.mode, msg.account, entry.symbol))
        if p is None or p.position_id != entry.position_id:
            continue
        levels = msg.tp_sl_levels.get(entry.symbol)
        tp = entry.tp if entry.tp is not None else (levels.tp if levels else None)
        sl = entry.sl if entry.sl is not None else (levels.sl if levels else None)
        changes: dict[str, list[Any]] = {}
        if tp is not None and tp != p.tp:
            changes["tp"] = [p.tp, tp]
            p.tp = tp
        if sl is not None and sl != p.sl:
            changes["sl"] = [p.sl, sl]
            p.sl = sl
        if entry.ttl_ts is not None and entry.ttl_ts != p.ttl_ts:
            changes["ttl_ts"] = [p.ttl_ts, entry.ttl_ts]
            p.ttl_ts = entry.ttl_ts
        if not changes:
            continue
        p.updated_seq, p.updated_at = c.seq, msg.updated_at
        unit.event("tp_sl_change", c.seq, msg.updated_at, mode=msg.mode, account=msg.account, symbol=p.symbol,
                   position_id=p.position_id, side=p.side, qty_before=p.qty, qty_after=p.qty, source=c.src,
                   **changes)
        unit.write_position(p)
