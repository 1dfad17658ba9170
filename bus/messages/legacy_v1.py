"""Protocol version 1 in the journal and snapshots: read and upgraded, never accepted on ingest.

Version 2 renamed the message types (commands imperative, events past tense, documents by
their file), made every message `v` 2, and made mode and account required where version 1
defaulted them. A journal or snapshot written by a version-1 hub still replays: each record
is upgraded here before it is applied. The upgrade is stateful only in one way: version 1
positions and ledger documents without a scope meant "the active scope", which the upgrader
follows through the scope switches it sees (starting from the writer's configured scope).
"""

from __future__ import annotations

from typing import Any, Final

V1_TYPES: Final[dict[str, str]] = {
    "order_intent": "submit_order",
    "exit_trigger": "request_exit",
    "scope_switch": "switch_scope",
    "nav_peak_reset": "reset_nav_peak",
    "reconciliation_resolution": "resolve_mismatch",
    "legacy_import": "import_legacy_positions",
    "heartbeat": "heartbeat",
    "signal": "signal_generated",
    "veto": "entry_vetoed",
    "order_event": "order_updated",
    "fill": "order_filled",
    "router_event": "router_acted",
    "exit_scan_status": "exit_scan_completed",
    "reconciliation_report": "exchange_positions_reported",
    "positions_snapshot": "positions_state",
    "ledger_update": "positions_ledger",
    "kpi_snapshot": "kpis_v7",
    "nav_sample": "nav_state",
    "risk_snapshot": "risk_snapshot",
    "router_state": "router_state",
    "runtime_diagnostics": "runtime_diagnostics",
    "factor_diagnostics": "factor_diagnostics",
}
# Version 1 defaulted these to SIM/paper when a sender left them out.
_V1_SCOPE_DEFAULTED: Final = frozenset({"order_intent", "exit_trigger", "order_event", "fill"})
# Version 1 let these say null for "the active scope".
_V1_ACTIVE_SCOPE: Final = frozenset({"positions_snapshot", "ledger_update"})


class V1Upgrader:
    """Turns version-1 message dicts into version 2, in journal order."""

    def __init__(self, mode: str, account: str) -> None:
        self.active = (mode, account)

    def message(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The version-2 form of `msg`; a version-2 message is returned as it is."""
        if msg.get("v") != 1:
            return msg
        old = msg.get("type")
        new = V1_TYPES.get(str(old))
        if new is None:
            return msg  # not a version-1 type either: the caller's decode refuses it
        out = {**msg, "type": new, "v": 2}
        if old in _V1_SCOPE_DEFAULTED:
            out.setdefault("mode", "SIM")
            out.setdefault("account", "paper")
        elif old in _V1_ACTIVE_SCOPE:
            if out.get("mode") is None or out.get("account") is None:
                out["mode"], out["account"] = self.active
        elif old == "scope_switch":
            self.active = (str(msg["mode"]), str(msg["account"]))
        return out

    def document(self, key: str, doc: dict[str, Any]) -> dict[str, Any]:
        """A version-1 state document (a snapshot's) in version-2 form."""
        if key in ("positions_state", "positions_ledger") and (doc.get("mode") is None or doc.get("account") is None):
            return {**doc, "mode": self.active[0], "account": self.active[1]}
        return doc
