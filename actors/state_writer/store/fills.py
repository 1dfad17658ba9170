"""Order intents and fills: what opens, grows, reduces and closes a stored position.

An intent is stored for the TP/SL/TTL and position id its first fill opens the position
with. A fill is applied once per exchange trade id (per mode, account, symbol), whatever bus
identity resends it; the position rules are `positions.py`'s. A fill the store cannot apply
as sent is kept (`fill_record`), recorded as a `fill_anomaly` and raised as a
reconciliation issue, never a reason to stop.
"""

from __future__ import annotations

import logging
import math

from actors.state_writer.store.positions import EntryInfo, apply_fill
from actors.state_writer.store.reconciliation import raise_issue
from actors.state_writer.store.state import StoreState
from actors.state_writer.store.unit import FILL_SEEN, INSERT_FILL, INSERT_INTENT, INTENT_BY_ID, Issue, Unit
from bus.messages import OrderFilled, OrderUpdated, RequestExit, SubmitOrder

log = logging.getLogger(__name__)


def track_inflight(st: StoreState, msg: SubmitOrder | RequestExit | OrderUpdated) -> None:
    """Intents whose orders are still working: reconciliation leaves their symbols for later."""
    if isinstance(msg, OrderUpdated):
        if msg.intent_done:
            st.inflight.pop(msg.intent_id, None)
        return
    st.track_inflight(msg.intent_id, (msg.mode, msg.account, msg.symbol))


def on_intent(st: StoreState, unit: Unit, seq: int, i: SubmitOrder) -> None:
    if unit.read(INTENT_BY_ID, k_id=i.intent_id) is not None:
        return  # a re-sent intent with a new sseq; the first one stands
    unit.write(INSERT_INTENT, {
        "intent_id": i.intent_id, "mode": i.mode, "account": i.account, "symbol": i.symbol, "side": i.side,
        "qty": i.qty, "purpose": i.purpose, "reduce_only": i.reduce_only, "position_id": i.position_id,
        "tp": i.tp, "sl": i.sl, "ttl_ts": i.ttl_ts, "arrival_mid": i.arrival_mid, "signal_id": i.signal_id,
        "ts": i.ts, "seq": seq})
    st.remember_intent(i.intent_id, EntryInfo(
        position_id=i.position_id or i.intent_id, tp=i.tp, sl=i.sl, ttl_ts=i.ttl_ts, intent_id=i.intent_id,
        signal_id=i.signal_id, arrival_mid=i.arrival_mid))


def _entry_info(st: StoreState, unit: Unit, f: OrderFilled) -> EntryInfo:
    info = st.intents.get(f.intent_id)
    if info is None:
        row = unit.read(INTENT_BY_ID, k_id=f.intent_id)
        if row is not None:
            info = EntryInfo(position_id=row.position_id or row.intent_id, tp=row.tp, sl=row.sl,
                             ttl_ts=row.ttl_ts, intent_id=row.intent_id, signal_id=row.signal_id,
                             arrival_mid=row.arrival_mid)
            st.remember_intent(f.intent_id, info)
    if info is None:  # a fill whose intent never reached the hub: open it anyway, without levels
        info = EntryInfo(position_id=f.position_id or f.intent_id, intent_id=f.intent_id, arrival_mid=f.arrival_mid)
    return info


def on_fill(st: StoreState, unit: Unit, seq: int, f: OrderFilled) -> None:
    metrics = st.metrics
    dup = unit.read(FILL_SEEN, k_mode=f.mode, k_account=f.account, k_symbol=f.symbol, k_trade_id=f.trade_id)
    if dup is not None:
        metrics.fills.labels("duplicate").inc()
        log.info("fill %s %s/%s %s already applied; ignoring the resend (seq %d)",
                 f.trade_id, f.mode, f.account, f.symbol, seq)
        return
    key = (f.mode, f.account, f.symbol)
    if not math.isfinite(f.qty * f.price * 2.0):  # sums of such a fill would overflow to inf
        metrics.fills.labels("anomaly").inc()
        unit.event("fill_anomaly", seq, f.ts, mode=f.mode, account=f.account, symbol=f.symbol,
                   trade_id=f.trade_id, reason="qty x price overflows; not applied", fill_qty=f.qty,
                   fill_price=f.price)
        return
    result = apply_fill(
        st.positions.get(key), mode=f.mode, account=f.account, symbol=f.symbol, side=f.side, qty=f.qty,
        price=f.price, fee=f.fee, reduce_only=f.reduce_only, when=f.ts, seq=seq, entry=_entry_info(st, unit, f))
    unit.write(INSERT_FILL, {
        "mode": f.mode, "account": f.account, "symbol": f.symbol, "trade_id": f.trade_id, "order_id": f.order_id,
        "intent_id": f.intent_id, "side": f.side, "qty": f.qty, "price": f.price, "fee": f.fee,
        "reduce_only": f.reduce_only, "ts": f.ts, "seq": seq})
    for ch in result.changes:
        unit.event(ch.kind, seq, f.ts, mode=f.mode, account=f.account, symbol=f.symbol,
                   position_id=ch.position_id, trade_id=f.trade_id, side=ch.side, qty_before=ch.qty_before,
                   qty_after=ch.qty_after, price=ch.price, realized=ch.realized, fee=ch.fee,
                   intent_id=f.intent_id, order_id=f.order_id, fill_side=f.side, liquidity=f.liquidity,
                   exchange_realized=f.realized_pnl)
    if result.closed is not None:
        unit.record_trade(result.closed)
    if result.position is not None:
        st.positions[key] = result.position
        unit.write_position(result.position)
    else:
        st.positions.pop(key, None)
        unit.delete_position(key)
    last = st.last_fill_ts.get(key)
    st.last_fill_ts[key] = f.ts if last is None else max(last, f.ts)
    if result.anomaly is None:
        metrics.fills.labels("applied").inc()
        return
    metrics.fills.labels("anomaly").inc()
    unaccounted_fee = f.fee - sum(ch.fee for ch in result.changes)
    log.warning("fill %s %s/%s %s: %s", f.trade_id, f.mode, f.account, f.symbol, result.anomaly)
    unit.event("fill_anomaly", seq, f.ts, mode=f.mode, account=f.account, symbol=f.symbol,
               trade_id=f.trade_id, price=f.price, fee=unaccounted_fee, reason=result.anomaly,
               fill_side=f.side, fill_qty=f.qty, reduce_only=f.reduce_only)
    pos = result.position
    raise_issue(st, unit, seq, f.ts, Issue(
        mode=f.mode, account=f.account, symbol=f.symbol, kind="fill_anomaly", policy=st.cfg.reconcile_policy,
        store_side=pos.side if pos else None, store_qty=pos.qty if pos else 0.0,
        detail=f"trade {f.trade_id}: {result.anomaly}", opened_seq=seq, last_seen_seq=seq, opened_at=f.ts))
