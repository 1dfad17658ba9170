"""Switching the active scope (mode, account): recorded, nothing else changes.

Every scope's positions stay open and keep their levels; the active one is what the
executor trades and what `pnl_today` always has a row for.
"""

from __future__ import annotations

from actors.state_writer.store.state import StoreState
from actors.state_writer.store.unit import Unit
from bus.messages import ActiveScope, SwitchScope


def on_scope_switch(st: StoreState, unit: Unit, seq: int, msg: SwitchScope) -> None:
    # Write every pending extreme now, so the database is current for the scope being left.
    for p in st.positions.values():
        if p.dirty_since_seq is not None:
            unit.write_position(p)
    before = st.active
    st.active = ActiveScope(mode=msg.mode, account=msg.account, since_seq=seq)
    unit.write_meta(active_mode=msg.mode, active_account=msg.account, active_since_seq=seq)
    open_here = sum(1 for (m, a, _s) in st.positions if (m, a) == (msg.mode, msg.account))
    unit.event("scope_switch", seq, msg.ts, mode=msg.mode, account=msg.account,
               previous=f"{before.mode}/{before.account}", requested_by=msg.requested_by, reason=msg.reason,
               open_positions=open_here)
