"""Protocol version 1 in the journal and snapshots: read and upgraded, never accepted on ingest.

Version 2 renamed the message types (commands imperative, events past tense, documents by
their file), made every message `v` 2, and made mode and account required where version 1
defaulted them. A journal or snapshot written by a version-1 hub still replays: each record
is upgraded here before it is applied. The upgrade is stateful only in one way: version 1
positions and ledger documents without a scope meant "the active scope", which the upgrader
follows through the scope switches it sees (starting from the writer's configured scope).

Documents gained a `scope` (mode, network, account) later in version 2; a document journaled
without one (version 1, or version 2 before the field) gets the scope it was written for:
its own mode and account where it named them, else the active scope; the network is the
writer's for LIVE and "paper" otherwise.
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
_DOCUMENTS: Final = frozenset({"positions_state", "positions_ledger", "kpis_v7", "nav_state", "risk_snapshot",
                               "router_state", "runtime_diagnostics", "factor_diagnostics"})


class V1Upgrader:
    """Turns version-1 message dicts into version 2, in journal order."""

    def __init__(self, mode: str, account: str, network: str = "testnet") -> None:
        self.active = (mode, account)
        self.live_network = network if network != "paper" else "testnet"

    def message(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The version-2 form of `msg`; a version-2 message is returned as it is."""
        if msg.get("v") != 1:
            return self._scoped(msg) if msg.get("type") in _DOCUMENTS and "scope" not in msg else msg
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
        return self._scoped(out) if new in _DOCUMENTS else out

    def document(self, key: str, doc: dict[str, Any]) -> dict[str, Any]:
        """A state document of a snapshot written before documents carried their scope, with it."""
        return self._scoped(doc) if key in _DOCUMENTS and "scope" not in doc else doc

    def _scoped(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        mode, account = out.pop("mode", None), out.pop("account", None)
        if mode is None or account is None:
            mode, account = self.active
        network = self.live_network if mode == "LIVE" else "paper"
        return {**out, "scope": {"mode": mode, "network": network, "account": account}}
