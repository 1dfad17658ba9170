"""Position rules, as pure functions on an in-memory `Position`: no I/O, no clock.

One net position per (mode, account, symbol), changed by the kernel's arithmetic
(`domain.positions`: average entry, realize, flat, flip). This module adds the store's
bookkeeping around it: trade ids, fees split between a flip's two legs, entry and exit totals,
extremes, and the anomalies a reduce-only fill can show.

A trade's extremes (`trade_min_price`, `trade_max_price`) take every fill price and every
mark seen while it is open. MAE/MFE are the adverse/favourable excursion of those extremes
from the average entry, per unit times the largest size held, in quote currency (>= 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from bus.messages import ClosedTrade, StoredPosition
from domain import positions as position_math
from domain.positions import unrealized_pnl
from domain.vocabulary import direction_of, sign_of


@dataclass(slots=True, kw_only=True)
class EntryInfo:
    """What a new position opens with, from the order intent behind its first fill."""

    position_id: str
    tp: float | None = None
    sl: float | None = None
    ttl_ts: datetime | None = None
    intent_id: str | None = None
    signal_id: str | None = None
    arrival_mid: float | None = None


@dataclass(slots=True, kw_only=True)
class Position:
    mode: str
    account: str
    symbol: str
    side: str
    qty: float
    entry_price: float
    entry_time: datetime
    position_id: str
    trade_min_price: float
    trade_max_price: float
    opened_seq: int
    updated_seq: int
    created_at: datetime
    updated_at: datetime
    tp: float | None = None
    sl: float | None = None
    ttl_ts: datetime | None = None
    entry_intent_id: str | None = None
    entry_signal_id: str | None = None
    entry_arrival_mid: float | None = None
    mark_price: float | None = None
    peak_qty: float = 0.0
    entry_qty_total: float = 0.0
    entry_notional: float = 0.0
    exit_qty_total: float = 0.0
    exit_notional: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    source: str = "fill"
    # In memory only: extremes/mark changes not yet written, and when this row was last written.
    dirty_since_seq: int | None = field(default=None, compare=False)
    last_write_mono: float = field(default=0.0, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.mode, self.account, self.symbol)

    @property
    def direction(self) -> int:
        return sign_of(self.side)  # type: ignore[arg-type]

    def observe(self, price: float) -> bool:
        """Widen the trade's extremes to `price`; True if they changed."""
        changed = False
        if price < self.trade_min_price:
            self.trade_min_price = price
            changed = True
        if price > self.trade_max_price:
            self.trade_max_price = price
            changed = True
        return changed

    def unrealized(self) -> float:
        if self.mark_price is None:
            return 0.0
        return unrealized_pnl(self.side, self.qty, self.entry_price, self.mark_price)  # type: ignore[arg-type]

    def avg_entry(self) -> float:
        return self.entry_notional / self.entry_qty_total if self.entry_qty_total > 0 else self.entry_price

    def excursions(self) -> tuple[float, float, float, float]:
        """(mae, mfe, mae_pct, mfe_pct) from the extremes and the average entry."""
        entry = self.avg_entry()
        if self.side == "LONG":
            adverse, favourable = entry - self.trade_min_price, self.trade_max_price - entry
        else:
            adverse, favourable = self.trade_max_price - entry, entry - self.trade_min_price
        adverse, favourable = max(0.0, adverse), max(0.0, favourable)
        size = max(self.peak_qty, self.qty)
        return adverse * size, favourable * size, adverse / entry, favourable / entry

    def to_view(self) -> StoredPosition:
        return StoredPosition(
            mode=self.mode, account=self.account, symbol=self.symbol, side=self.side, qty=self.qty,  # type: ignore[arg-type]
            entry_price=self.entry_price, entry_time=self.entry_time, position_id=self.position_id,
            tp=self.tp, sl=self.sl, ttl_ts=self.ttl_ts, trade_min_price=self.trade_min_price,
            trade_max_price=self.trade_max_price, mark_price=self.mark_price, unrealized_pnl=self.unrealized(),
            realized_gross=self.realized_pnl, fees=self.fees, entry_intent_id=self.entry_intent_id,
            entry_signal_id=self.entry_signal_id, entry_arrival_mid=self.entry_arrival_mid,
            source=self.source, opened_seq=self.opened_seq, updated_seq=self.updated_seq,  # type: ignore[arg-type]
            created_at=self.created_at, updated_at=self.updated_at,
        )


def open_position(
    *, mode: str, account: str, symbol: str, side: str, qty: float, price: float, when: datetime, seq: int,
    info: EntryInfo, fee: float = 0.0, source: str = "fill",
) -> Position:
    return Position(
        mode=mode, account=account, symbol=symbol, side=side, qty=qty, entry_price=price, entry_time=when,
        position_id=info.position_id, trade_min_price=price, trade_max_price=price, opened_seq=seq,
        updated_seq=seq, created_at=when, updated_at=when, tp=info.tp, sl=info.sl, ttl_ts=info.ttl_ts,
        entry_intent_id=info.intent_id, entry_signal_id=info.signal_id, entry_arrival_mid=info.arrival_mid,
        mark_price=price, peak_qty=qty, entry_qty_total=qty, entry_notional=qty * price, fees=fee, source=source,
    )


@dataclass(slots=True, kw_only=True)
class Change:
    """One audit event a fill produced (becomes a position_event row)."""

    kind: str  # open | add | reduce | close
    position_id: str
    side: str
    qty_before: float
    qty_after: float
    price: float
    realized: float = 0.0
    fee: float = 0.0


@dataclass(slots=True, kw_only=True)
class TradeClose:
    """A trade closed: the final state of its position and how it ended."""

    position: Position
    exit_time: datetime
    seq: int
    reason: str

    def record(self) -> ClosedTrade:
        p = self.position
        mae, mfe, _mae_pct, _mfe_pct = p.excursions()
        exit_price = p.exit_notional / p.exit_qty_total if p.exit_qty_total > 0 else p.mark_price or p.entry_price
        return ClosedTrade(
            mode=p.mode, account=p.account, symbol=p.symbol, side=p.side, position_id=p.position_id,  # type: ignore[arg-type]
            qty=p.entry_qty_total, entry_time=p.entry_time, entry_price=p.avg_entry(), exit_time=self.exit_time,
            exit_price=exit_price, realized_gross=p.realized_pnl, fees=p.fees, realized_net=p.realized_pnl - p.fees,
            mae=mae, mfe=mfe, trade_min_price=p.trade_min_price, trade_max_price=p.trade_max_price,
            close_reason=self.reason, closed_seq=self.seq,
        )


@dataclass(slots=True, kw_only=True)
class FillResult:
    position: Position | None  # what is open after the fill (None: flat)
    changes: list[Change] = field(default_factory=list)
    closed: TradeClose | None = None
    realized: float = 0.0  # gross, this fill
    anomaly: str | None = None


def apply_fill(
    pos: Position | None, *, mode: str, account: str, symbol: str, side: str, qty: float, price: float,
    fee: float, reduce_only: bool, when: datetime, seq: int, entry: EntryInfo,
) -> FillResult:
    """The position after one fill. `side` is the order side (BUY/SELL); the arithmetic is the kernel's."""
    if pos is None:
        if reduce_only:
            return FillResult(position=None, anomaly="reduce-only fill with no open position in the store")
        new = open_position(mode=mode, account=account, symbol=symbol, side=direction_of(side),  # type: ignore[arg-type]
                            qty=qty, price=price, when=when, seq=seq, info=entry, fee=fee)
        return FillResult(position=new, changes=[Change(kind="open", position_id=new.position_id, side=new.side,
                                                        qty_before=0.0, qty_after=qty, price=price, fee=fee)])

    effect = position_math.apply_fill(pos.qty * pos.direction, pos.entry_price, side, qty, price)  # type: ignore[arg-type]
    pos.updated_seq, pos.updated_at = seq, when
    pos.observe(price)
    before = pos.qty
    if effect.closed == 0.0:  # an add
        if reduce_only:
            return FillResult(position=pos, anomaly=f"reduce-only {side} fill would increase the {pos.side} position")
        pos.entry_price, pos.qty = effect.entry_price, abs(effect.qty)
        pos.peak_qty = max(pos.peak_qty, pos.qty)
        pos.entry_qty_total += qty
        pos.entry_notional += qty * price
        pos.fees += fee
        return FillResult(position=pos, changes=[Change(kind="add", position_id=pos.position_id, side=pos.side,
                                                        qty_before=before, qty_after=pos.qty, price=price, fee=fee)])

    # The fee is split by size between the closing part and a flip's opening part.
    close_fee = fee * (effect.closed / qty)
    pos.realized_pnl += effect.realized
    pos.fees += close_fee
    pos.exit_qty_total += effect.closed
    pos.exit_notional += effect.closed * price
    if effect.qty != 0.0 and not effect.flipped:
        pos.qty = abs(effect.qty)
        reduced = Change(kind="reduce", position_id=pos.position_id, side=pos.side, qty_before=before,
                         qty_after=pos.qty, price=price, realized=effect.realized, fee=close_fee)
        return FillResult(position=pos, changes=[reduced], realized=effect.realized)
    pos.qty = 0.0
    closed = Change(kind="close", position_id=pos.position_id, side=pos.side, qty_before=before, qty_after=0.0,
                    price=price, realized=effect.realized, fee=close_fee)
    result = FillResult(position=None, changes=[closed],
                        closed=TradeClose(position=pos, exit_time=when, seq=seq, reason="fill"),
                        realized=effect.realized)
    if effect.flipped:
        if reduce_only:
            result.anomaly = f"reduce-only fill exceeded the position by {effect.opened:g}; excess not applied"
            return result
        if entry.position_id == pos.position_id:  # the new trade needs an id of its own
            entry = replace(entry, position_id=f"{entry.position_id}:flip{seq}")
        flip = open_position(mode=mode, account=account, symbol=symbol, side=direction_of(side),  # type: ignore[arg-type]
                             qty=effect.opened, price=price, when=when, seq=seq, info=entry, fee=fee - close_fee)
        result.position = flip
        result.changes.append(Change(kind="open", position_id=flip.position_id, side=flip.side, qty_before=0.0,
                                     qty_after=effect.opened, price=price, fee=fee - close_fee))
    return result
