"""The executor's side of the positions store (docs/positions_store.md).

- Recovery: the open positions of this executor's scope come from the store (`open_positions`),
  with their position ids, TP/SL and TTL, not from the last ledger file.
- Scope: this executor trades its configured (mode, account). On start it makes that the
  active scope; while another scope is active it opens nothing (`scope_inactive`).
- Reconciliation: on start and every `store.reconcile_interval_s`, the exchange's positions
  go to the state writer as a `reconciliation_report`. An exchange that cannot be read is
  reported as such: never as flat.
- Entry blocks: a symbol with an open mismatch takes no new entry
  (`reconciliation_mismatch`), a halted scope none at all (`reconciliation_halt`).
- Today's P&L per mode and account, for the KPI snapshot.

The views arrive on the hub's updates (published on the commit that changes them) and in
every snapshot; nothing here asks for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from bus.messages import (
    ActiveScope,
    ExchangePositionsReported,
    PnlScope,
    PnlToday,
    ReconciliationView,
    ReportedPosition,
    SwitchScope,
)
from config.settings import Settings
from exchange.adapter import ExchangePosition as VenuePosition

log = logging.getLogger(__name__)

VIEWS = ("active_scope", "reconciliation", "pnl_today", "open_positions")


class StoreLink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mode, self.account = settings.mode, settings.account
        self.interval_s = settings.store.reconcile_interval_s
        self.active: ActiveScope | None = None
        self.view: ReconciliationView | None = None
        self.pnl: PnlToday | None = None
        self.store_symbols: set[str] = set()
        self._next_report = 0.0
        self._reported = False

    # --- views -----------------------------------------------------------------------------------

    def absorb(self, state: Mapping[str, Any]) -> None:
        """Take the store's views from a snapshot, or one view as it changed."""
        try:
            if state.get("active_scope"):
                self.active = ActiveScope.model_validate(state["active_scope"])
            if state.get("reconciliation"):
                self.view = ReconciliationView.model_validate(state["reconciliation"])
            if state.get("pnl_today"):
                self.pnl = PnlToday.model_validate(state["pnl_today"])
            if state.get("open_positions") is not None:
                self.store_symbols = {p["symbol"] for p in state["open_positions"]
                                      if (p.get("mode"), p.get("account")) == (self.mode, self.account)}
        except (ValidationError, TypeError, KeyError) as exc:
            log.error("store views unreadable (%s); keeping the last good ones", exc)

    def scope_switch_needed(self) -> SwitchScope | None:
        """The switch that makes this executor's scope the active one, if another one is."""
        if self.active is None or (self.active.mode, self.active.account) == (self.mode, self.account):
            return None
        return SwitchScope(mode=self.mode, account=self.account, requested_by="executor",  # type: ignore[arg-type]
                           reason=f"executor started for {self.mode}/{self.account}")

    def entry_block(self, symbol: str) -> tuple[str, str] | None:
        """(veto reason, detail) if the store says no new entry on `symbol`; None otherwise."""
        if self.active is not None and (self.active.mode, self.active.account) != (self.mode, self.account):
            return ("scope_inactive", f"active scope is {self.active.mode}/{self.active.account}, "
                                      f"this executor trades {self.mode}/{self.account}")
        if self.view is None:
            return None
        if any((h.mode, h.account) == (self.mode, self.account) for h in self.view.halted):
            return ("reconciliation_halt", f"{self.mode}/{self.account} halted until every mismatch is resolved "
                                           "(v7 reconcile list)")
        for issue in self.view.issues:
            if (issue.mode, issue.account, issue.symbol) == (self.mode, self.account, symbol):
                return ("reconciliation_mismatch", f"{issue.kind}: {issue.detail} (v7 reconcile resolve {symbol})")
        return None

    def pnl_scopes(self) -> list[PnlScope]:
        return list(self.pnl.scopes) if self.pnl is not None else []

    def pnl_scope(self) -> PnlScope | None:
        """This executor's own row of today's P&L."""
        return next((s for s in self.pnl_scopes() if (s.mode, s.account) == (self.mode, self.account)), None)

    # --- reconciliation --------------------------------------------------------------------------

    def report_due(self, now_mono: float | None = None) -> str | None:
        """'start' for the first report, 'periodic' when the interval has passed, else None."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        if now_mono < self._next_report:
            return None
        return "periodic" if self._reported else "start"

    def report(self, read_at: datetime, positions: list[VenuePosition] | None, trigger: str,
               error: str = "") -> ExchangePositionsReported:
        """The exchange's answer as a report; `positions=None` means the exchange could not be read."""
        self._reported = True
        self._next_report = time.monotonic() + self.interval_s
        if positions is None:
            return ExchangePositionsReported(ts=read_at, mode=self.mode, account=self.account,  # type: ignore[arg-type]
                                        trigger=trigger, exchange_ok=False, error=error[:2000])  # type: ignore[arg-type]
        # Every open position of the account comes back, so any other symbol we know of is flat.
        symbols = sorted(set(self.settings.symbols) | self.store_symbols | {p.symbol for p in positions})
        return ExchangePositionsReported(
            ts=read_at, mode=self.mode, account=self.account, trigger=trigger,  # type: ignore[arg-type]
            exchange_ok=True, symbols=symbols,
            positions=[ReportedPosition(symbol=p.symbol, side=p.side, qty=p.qty, entry_price=p.entry_price,
                                        mark_price=p.mark_price) for p in positions])
