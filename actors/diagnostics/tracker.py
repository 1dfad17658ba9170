"""EntryVetoed counters and exit pipeline status, folded from committed bus messages.

What counts (docs/runtime_diagnostics.md):
- SignalGenerated: total_signals, last_signal_ts.
- EntryVetoed: total_vetoes, by_reason, by_reason_symbol, last_veto_ts.
- SubmitOrder: total_orders (one per order decision, whatever the router makes of it) and
  last_order_ts; an OrderUpdated (an exchange order changed state) also moves last_order_ts.
- ExitScanCompleted: last_exit_scan_ts and the coverage figures of that scan.
- RequestExit: last_exit_trigger_ts.  RouterActed: last_router_event_ts (seed 004 §2).

Timestamps are the events' own times, taken as the latest one received (not the maximum),
so one message stamped far in the future is corrected by the next.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from bus.messages import (
    EntryVetoed,
    ExitPipeline,
    ExitScanCompleted,
    Message,
    OrderUpdated,
    RequestExit,
    RouterActed,
    RuntimeDiagnosticsBlock,
    SignalGenerated,
    SubmitOrder,
    VetoCounters,
)
from config.strategy import DiagnosticsConfig

log = logging.getLogger(__name__)


class DiagnosticsTracker:
    def __init__(self, cfg: DiagnosticsConfig) -> None:
        self.cfg = cfg
        self.veto = VetoCounters()
        self.exits = ExitPipeline()
        self.changes = 0  # bumped whenever a counter or timestamp moves

    # --- restart: continue from the last published document ----------------------------------

    def restore(self, document: dict[str, Any] | None) -> bool:
        """Take counters and timestamps from a `runtime_diagnostics` document; False if none usable."""
        if not document:
            return False
        block = document.get("runtime_diagnostics")
        if not isinstance(block, dict):
            log.warning("runtime_diagnostics document has no runtime_diagnostics block; starting from zero")
            return False
        restored = False
        # Block by block, so one unreadable part does not throw away the others.
        for name, model, attr in (("veto_counters", VetoCounters, "veto"), ("exit_pipeline", ExitPipeline, "exits")):
            raw = block.get(name)
            if raw is None:
                continue
            try:
                setattr(self, attr, model.model_validate(raw))
                restored = True
            except ValidationError as exc:
                log.error("cannot restore %s from the hub snapshot (%s); starting it from zero",
                          name, exc.errors(include_url=False)[0]["msg"])
        return restored

    # --- live messages -------------------------------------------------------------------------

    def apply(self, msg: Message) -> bool:
        """Fold one committed message in; True if it changed anything."""
        veto_on = self.cfg.veto_metrics.enabled
        exits_on = self.cfg.exit_pipeline.enabled
        if isinstance(msg, SignalGenerated) and veto_on:
            self._veto(total_signals=self.veto.total_signals + 1, last_signal_ts=msg.ts)
        elif isinstance(msg, EntryVetoed) and veto_on:
            by_symbol = dict(self.veto.by_reason_symbol.get(msg.reason, {}))
            by_symbol[msg.symbol] = by_symbol.get(msg.symbol, 0) + 1
            self._veto(
                total_vetoes=self.veto.total_vetoes + 1,
                by_reason={**self.veto.by_reason, msg.reason: self.veto.by_reason.get(msg.reason, 0) + 1},
                by_reason_symbol={**self.veto.by_reason_symbol, msg.reason: by_symbol},
                last_veto_ts=msg.ts,
            )
        elif isinstance(msg, SubmitOrder) and veto_on:
            self._veto(total_orders=self.veto.total_orders + 1, last_order_ts=msg.ts)
        elif isinstance(msg, OrderUpdated) and veto_on:
            self._veto(last_order_ts=msg.ts)
        elif isinstance(msg, ExitScanCompleted) and exits_on:
            self._exits(
                last_exit_scan_ts=msg.ts,
                open_positions_count=msg.open_positions_count,
                tp_sl_registered_count=msg.tp_sl_registered_count,
                tp_sl_missing_count=msg.tp_sl_missing_count,
                underwater_without_tp_sl_count=msg.underwater_without_tp_sl_count,
                tp_sl_coverage_pct=msg.tp_sl_coverage_pct,
                ledger_registry_mismatch=msg.ledger_registry_mismatch,
                missing_symbols=list(msg.missing_symbols),
                ledger_disagreement_symbols=list(msg.ledger_disagreement_symbols),
            )
        elif isinstance(msg, RequestExit) and exits_on:
            self._exits(last_exit_trigger_ts=msg.ts)
        elif isinstance(msg, RouterActed) and exits_on:
            self._exits(last_router_event_ts=msg.ts)
        else:
            return False
        return True

    def _veto(self, **changes: Any) -> None:
        self.veto = self.veto.model_copy(update=changes)
        self.changes += 1

    def _exits(self, **changes: Any) -> None:
        self.exits = self.exits.model_copy(update=changes)
        self.changes += 1

    def block(self, **parts: Any) -> RuntimeDiagnosticsBlock:
        return RuntimeDiagnosticsBlock(veto_counters=self.veto, exit_pipeline=self.exits, **parts)
