"""Store vs exchange: reports, the mismatches they raise, operator resolutions, and adopting the exchange.

Missing exchange data never means flat: a report without it compares nothing, and a symbol
the report does not list keeps whatever issue it had. Only settled symbols are compared (no
order in flight, no fill committed after the exchange was read). What a mismatch leads to
is `store.reconcile_policy` (docs/positions_store.md, Reconciliation); which symbols disagree
is `compare.py`'s pure decision.
"""

from __future__ import annotations

import logging
from datetime import datetime

from actors.state_writer.hooks import Committed
from actors.state_writer.store.compare import Mismatch, compare
from actors.state_writer.store.positions import EntryInfo, TradeClose, open_position
from actors.state_writer.store.state import StoreState
from actors.state_writer.store.unit import Issue, Unit
from bus.messages import ExchangePositionsReported, ReportedPosition, ResolveMismatch

log = logging.getLogger(__name__)

_ACTIONS = {"halt": "halt scope", "adopt_exchange": "block new entries; adopt if the next report agrees"}


def on_report(st: StoreState, unit: Unit, c: Committed, r: ExchangePositionsReported) -> None:
    if not r.exchange_ok:
        # Missing exchange data is not "flat": nothing is compared and nothing changes.
        st.metrics.reconcile_reports.labels("exchange_unavailable").inc()
        unit.event("reconcile_unavailable", c.seq, r.ts, mode=r.mode, account=r.account, trigger=r.trigger,
                   error=r.error, source=c.src)
        return
    st.metrics.reconcile_reports.labels("compared").inc()
    in_scope = {s: p for (m, a, s), p in st.positions.items() if (m, a) == (r.mode, r.account)}
    unsettled = _unsettled(st, r)
    if unsettled:  # compared next time; until then they keep whatever issue they had
        r = r.model_copy(update={
            "symbols": [s for s in r.symbols if s not in unsettled],
            "positions": [p for p in r.positions if p.symbol not in unsettled]})
    mismatches, agreed = compare(in_scope, r, st.cfg.qty_tolerance)
    for symbol in agreed:
        issue = st.issues.get((r.mode, r.account, symbol))
        if issue is not None:
            resolve(st, unit, issue, c.seq, r.ts, "agreed", c.src, note="store and exchange agree again")
    policy = st.cfg.reconcile_policy
    for mm in mismatches:
        _on_mismatch(st, unit, c, r, mm)
    st.last_report_seq[f"{r.mode}/{r.account}"] = c.seq
    unit.event("reconcile_checked", c.seq, r.ts, mode=r.mode, account=r.account, trigger=r.trigger,
               source=c.src, symbols=len(r.symbols), mismatches=[f"{m.symbol}:{m.kind}" for m in mismatches],
               unsettled=sorted(unsettled), policy=policy)


def _unsettled(st: StoreState, r: ExchangePositionsReported) -> set[str]:
    """Symbols whose exchange answer may predate what the store has, or what is on its way."""
    busy = {sym for (m, a, sym) in st.inflight.values() if (m, a) == (r.mode, r.account)}
    for sym in r.symbols:
        last = st.last_fill_ts.get((r.mode, r.account, sym))
        if last is not None and last > r.ts:
            busy.add(sym)
    return busy & set(r.symbols)


def _on_mismatch(st: StoreState, unit: Unit, c: Committed, r: ExchangePositionsReported, mm: Mismatch) -> None:
    ex, held = mm.exchange, mm.store
    policy = st.cfg.reconcile_policy
    issue = Issue(
        mode=r.mode, account=r.account, symbol=mm.symbol, kind=mm.kind, policy=policy, detail=mm.detail(),
        opened_seq=c.seq, last_seen_seq=c.seq, opened_at=r.ts,
        store_side=held.side if held else None, store_qty=held.qty if held else 0.0,
        exchange_side=ex.side if ex else None, exchange_qty=ex.qty if ex else 0.0,
        exchange_entry_price=ex.entry_price if ex else None, exchange_mark_price=ex.mark_price if ex else None)
    existing = st.issues.get(issue.key)
    if policy == "adopt_exchange" and existing is not None and existing.same_as(issue):
        # Adopt only what two reports in a row agree on: one exchange answer can be stale.
        adopt(st, unit, c.seq, r.ts, issue.key, ex, decided_by=f"policy ({c.src})")
        resolve(st, unit, existing, c.seq, r.ts, "adopt_exchange", "policy",
                note=f"confirmed by the report at seq {c.seq}")
        return
    raise_issue(st, unit, c.seq, r.ts, issue)


def raise_issue(st: StoreState, unit: Unit, seq: int, ts: datetime, issue: Issue) -> None:
    """Record a new or changed mismatch; a repeat of the same one only moves last_seen_seq."""
    existing = st.issues.get(issue.key)
    if existing is not None and existing.same_as(issue):
        existing.last_seen_seq = seq
        unit.update_issue(existing)
        return
    st.metrics.reconcile_mismatches.labels(issue.kind, issue.policy).inc()
    if existing is not None:
        issue.row_id, issue.opened_seq, issue.opened_at = existing.row_id, existing.opened_seq, existing.opened_at
        issue.policy = existing.policy if existing.policy == "halt" else issue.policy
        unit.update_issue(issue)
    else:
        issue.row_id = unit.insert_issue(issue)
    st.issues[issue.key] = issue
    log.warning("reconciliation %s/%s %s: %s (%s), policy %s", issue.mode, issue.account, issue.symbol,
                issue.kind, issue.detail, issue.policy)
    unit.event("reconcile_mismatch", seq, ts, mode=issue.mode, account=issue.account, symbol=issue.symbol,
               kind=issue.kind, policy=issue.policy, detail=issue.detail,
               action=_ACTIONS.get(issue.policy, "block new entries"))


def resolve(st: StoreState, unit: Unit, issue: Issue, seq: int, ts: datetime, resolution: str, by: str,
            note: str = "") -> None:
    unit.resolve_issue(issue, seq, resolution, by)
    st.issues.pop(issue.key, None)
    unit.event("reconcile_resolved", seq, ts, mode=issue.mode, account=issue.account, symbol=issue.symbol,
               kind=issue.kind, resolution=resolution, resolved_by=by, note=note, opened_seq=issue.opened_seq)


def adopt(st: StoreState, unit: Unit, seq: int, ts: datetime, key: tuple[str, str, str],
          ex: ReportedPosition | None, decided_by: str) -> None:
    """Make the store say what the exchange said. Never invents realized PnL for size it did not see."""
    mode, account, symbol = key
    p = st.positions.get(key)
    if p is not None and ex is not None and p.side == ex.side:
        before = p.qty
        p.qty, p.entry_price = ex.qty, ex.entry_price
        p.peak_qty = max(p.peak_qty, ex.qty)
        if ex.mark_price:
            p.mark_price = ex.mark_price
            p.observe(ex.mark_price)
        p.updated_seq, p.updated_at = seq, ts
        unit.write_position(p)
        unit.event("reconcile_adjust", seq, ts, mode=mode, account=account, symbol=symbol,
                   position_id=p.position_id, side=p.side, qty_before=before, qty_after=p.qty,
                   price=ex.entry_price, decided_by=decided_by)
        return
    if p is not None:
        exit_price = p.mark_price or p.entry_price
        realized = (exit_price - p.entry_price) * p.qty * p.direction
        before = p.qty
        p.realized_pnl += realized
        p.exit_qty_total += p.qty
        p.exit_notional += p.qty * exit_price
        p.observe(exit_price)
        unit.event("reconcile_close", seq, ts, mode=mode, account=account, symbol=symbol,
                   position_id=p.position_id, side=p.side, qty_before=before, qty_after=0.0, price=exit_price,
                   realized=realized, decided_by=decided_by, note="exit price estimated from the last mark")
        unit.record_trade(TradeClose(position=p, exit_time=ts, seq=seq, reason="reconcile_adopt"))
        st.positions.pop(key, None)
        unit.delete_position(key)
    if ex is not None:
        new = open_position(mode=mode, account=account, symbol=symbol, side=ex.side, qty=ex.qty,
                            price=ex.entry_price, when=ts, seq=seq,
                            info=EntryInfo(position_id=f"adopted:{mode}:{account}:{symbol}:{seq}"), source="reconcile")
        if ex.mark_price:
            new.mark_price = ex.mark_price
            new.observe(ex.mark_price)
        st.positions[key] = new
        unit.write_position(new)
        unit.event("reconcile_open", seq, ts, mode=mode, account=account, symbol=symbol,
                   position_id=new.position_id, side=new.side, qty_before=0.0, qty_after=new.qty,
                   price=ex.entry_price, decided_by=decided_by)


def on_resolution(st: StoreState, unit: Unit, seq: int, r: ResolveMismatch) -> None:
    issue = st.issues.get((r.mode, r.account, r.symbol))
    common = {"mode": r.mode, "account": r.account, "symbol": r.symbol}
    if issue is None:
        unit.event("resolution_ignored", seq, r.ts, **common, action=r.action, operator=r.operator,
                   note=r.note, reason="no open issue for this symbol")
        return
    if r.action == "adopt_exchange":
        if issue.kind == "fill_anomaly":
            unit.event("resolution_refused", seq, r.ts, **common, action=r.action, operator=r.operator,
                       reason="this issue carries no exchange data; wait for a reconciliation report or use keep_store")
            return
        ex = None
        if issue.exchange_side is not None and issue.exchange_qty > 0 and issue.exchange_entry_price:
            ex = ReportedPosition(symbol=r.symbol, side=issue.exchange_side, qty=issue.exchange_qty,  # type: ignore[arg-type]
                                  entry_price=issue.exchange_entry_price, mark_price=issue.exchange_mark_price)
        adopt(st, unit, seq, r.ts, issue.key, ex, decided_by=f"operator {r.operator}")
    resolve(st, unit, issue, seq, r.ts, r.action, r.operator, note=r.note)
