"""Router quality over a rolling window: maker fill share, slippage vs arrival mid, reject rate.

Slippage is signed in basis points of the arrival mid, positive = cost (a BUY above the mid, a
SELL below it); a maker fill at the touch usually shows a small negative slippage (half the
spread earned). Rates are fractions 0-1. Totals are cumulative and survive restarts through
the router_state document.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from bus.messages import RouterState, Scope, TwapState


@dataclass(slots=True)
class FillSample:
    notional: float
    maker: bool
    slippage_bps: float | None


def slippage_bps(side: str, price: float, arrival_mid: float) -> float:
    sign = 1.0 if side == "BUY" else -1.0
    return sign * (price - arrival_mid) / arrival_mid * 10_000.0


class Quality:
    def __init__(self, window: int) -> None:
        self.fills: deque[FillSample] = deque(maxlen=window)
        self.placements: deque[bool] = deque(maxlen=window)  # True = rejected
        self.orders_total = 0
        self.fills_total = 0
        self.rejects_total = 0
        self.slices_sent = 0

    def restore(self, doc: RouterState) -> None:
        self.orders_total = doc.orders_total
        self.fills_total = doc.fills_total
        self.rejects_total = doc.rejects_total
        self.slices_sent = doc.twap.slices_sent

    def placed(self) -> None:
        self.orders_total += 1
        self.placements.append(False)

    def rejected(self) -> None:
        self.rejects_total += 1
        self.placements.append(True)

    def filled(self, sample: FillSample) -> None:
        self.fills_total += 1
        self.fills.append(sample)

    @property
    def maker_fill_share(self) -> float | None:
        total = sum(f.notional for f in self.fills)
        return sum(f.notional for f in self.fills if f.maker) / total if total > 0 else None

    @property
    def avg_slippage_bps(self) -> float | None:
        measured = [f for f in self.fills if f.slippage_bps is not None]
        weight = sum(f.notional for f in measured)
        if weight <= 0:
            return None
        return sum(f.notional * (f.slippage_bps or 0.0) for f in measured) / weight

    @property
    def reject_rate(self) -> float | None:
        return sum(self.placements) / len(self.placements) if self.placements else None

    def policy_quality(self) -> str | None:
        share, slip, rejects = self.maker_fill_share, self.avg_slippage_bps, self.reject_rate
        if share is None:
            return None
        slip = slip or 0.0
        rejects = rejects or 0.0
        if rejects > 0.2 or slip > 10.0:
            return "poor"
        if rejects <= 0.05 and slip <= 2.0 and share >= 0.4:
            return "good"
        return "fair"

    def state(self, scope: Scope, maker_first: bool, twap_threshold: float, active_parents: int) -> RouterState:
        def r(x: float | None, nd: int = 6) -> float | None:
            return None if x is None else round(x, nd)

        share = self.maker_fill_share
        rejects = self.reject_rate
        return RouterState(
            scope=scope, policy_quality=self.policy_quality(), maker_first=maker_first,
            maker_fill_share=None if share is None else min(1.0, max(0.0, round(share, 6))),
            avg_slippage_bps=r(self.avg_slippage_bps, 4),
            reject_rate=None if rejects is None else min(1.0, max(0.0, round(rejects, 6))),
            orders_total=self.orders_total, fills_total=self.fills_total, rejects_total=self.rejects_total,
            twap=TwapState(threshold_notional=twap_threshold, active_parents=active_parents,
                           slices_sent=self.slices_sent),
        )
