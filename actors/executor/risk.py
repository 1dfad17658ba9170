"""Risk vetoes and sizing, and VaR/CVaR of NAV.

A check returns a named reason or nothing (NautilusTrader's `_check_*` shape); the executor
turns a reason into a `EntryVetoed` message and a counter. Reasons, in the order they are checked:

    dd_defensive             drawdown state is DEFENSIVE: no new entries
    stale_nav                no NAV sample, older than `stale_nav_s`, or an anomalous one
    max_open_positions       open positions + pending entries at the cap
    symbol_exposure_cap      no room under the per-symbol cap (fraction of NAV)
    portfolio_exposure_cap   no room under the portfolio gross cap
    min_notional             the sized order is below the minimum notional

(Checked before these, by the store link: scope_inactive, reconciliation_halt,
reconciliation_mismatch; see store_link.py.)
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from config.risk import RiskLimits


@dataclass(frozen=True, slots=True)
class RiskInputs:
    symbol: str
    price: float
    lot_size: float
    nav: float | None
    nav_age_s: float | None
    dd_state: str
    open_positions: int  # open positions + pending entries
    symbol_exposure: float  # gross notional already on this symbol (positions + pending)
    portfolio_exposure: float  # gross notional across symbols (positions + pending)
    target_fraction: float  # desired notional as a fraction of NAV (after conviction and dd scaling)
    nav_sources_ok: bool = True  # False: the last NAV reading was anomalous


@dataclass(frozen=True, slots=True)
class RiskDecision:
    reason: str | None
    detail: str = ""
    qty: float = 0.0

    @property
    def approved(self) -> bool:
        return self.reason is None


def evaluate_entry(limits: RiskLimits, x: RiskInputs) -> RiskDecision:
    caps = limits.caps
    if x.dd_state == "DEFENSIVE":
        return RiskDecision("dd_defensive", "drawdown state DEFENSIVE")
    if x.nav is None or x.nav <= 0 or x.nav_age_s is None:
        return RiskDecision("stale_nav", "no NAV sample yet")
    if not x.nav_sources_ok:
        return RiskDecision("stale_nav", "last NAV reading was anomalous (sources not ok)")
    if x.nav_age_s > limits.stale_nav_s:
        return RiskDecision("stale_nav", f"NAV is {x.nav_age_s:.1f}s old (limit {limits.stale_nav_s:g}s)")
    if x.open_positions >= caps.max_open_positions:
        return RiskDecision("max_open_positions", f"{x.open_positions} open or pending (cap {caps.max_open_positions})")
    target = x.nav * x.target_fraction
    room_symbol = x.nav * caps.max_symbol_exposure_nav_pct - x.symbol_exposure
    room_portfolio = x.nav * caps.max_portfolio_exposure_nav_pct - x.portfolio_exposure
    notional = min(target, room_symbol, room_portfolio)
    qty = math.floor(max(0.0, notional) / x.price / x.lot_size + 1e-9) * x.lot_size
    qty = round(qty, 12)
    # qty 0 is never an order, even with min_notional 0 (no room left must refuse, not approve 0).
    if qty <= 0.0 or qty * x.price < caps.min_notional:
        if room_symbol < target and room_symbol <= room_portfolio:
            return RiskDecision("symbol_exposure_cap", f"room {max(0.0, room_symbol):.2f} under the {x.symbol} cap")
        if room_portfolio < target:
            return RiskDecision("portfolio_exposure_cap", f"room {max(0.0, room_portfolio):.2f} under the "
                                                          "portfolio cap")
        return RiskDecision("min_notional", f"{qty * x.price:.2f} below minimum {caps.min_notional:g}")
    return RiskDecision(None, qty=qty)


def horizon_scale(times: Sequence[float], horizon_s: float) -> float:
    """sqrt(horizon / sampling interval): the square-root-of-time rule that quotes a VaR measured
    over one NAV sampling interval (the median spacing of `times`, epoch seconds) for `horizon_s`.
    1.0 when the spacing is unknown (fewer than two distinct times)."""
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    if not gaps:
        return 1.0
    return math.sqrt(horizon_s / statistics.median(gaps))


def var_cvar(navs: Sequence[float], confidence: float, min_samples: int,
             scale: float = 1.0) -> tuple[float | None, float | None]:
    """Historical VaR and CVaR of NAV as loss fractions (0.01 = 1% of NAV) from consecutive NAV
    returns, times `scale` (see `horizon_scale`) and at most 1.0 (all of NAV); (None, None) with
    fewer than `min_samples` returns."""
    returns = [b / a - 1.0 for a, b in itertools.pairwise(navs) if a > 0]
    if len(returns) < min_samples:
        return None, None
    returns.sort()
    cut = max(1, math.floor((1.0 - confidence) * len(returns)))
    tail = returns[:cut]
    var = max(0.0, -returns[cut - 1])
    cvar = max(0.0, -sum(tail) / len(tail))
    return min(1.0, var * scale), min(1.0, cvar * scale)
