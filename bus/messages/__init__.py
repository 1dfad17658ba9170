"""Every message type on the bus, and the registry the codec dispatches on.

Add a new type by defining it in one of the modules here and listing it in `MESSAGE_TYPES`.
"""

from __future__ import annotations

from bus.messages.base import Message, Model, utc_now
from bus.messages.control import Heartbeat, NavPeakReset
from bus.messages.positions import LegacyImport, ReconciliationReport, ReconciliationResolution, ScopeSwitch
from bus.messages.state import (
    FactorDiagnostics,
    KpiSnapshot,
    LedgerUpdate,
    NavSample,
    PositionsSnapshot,
    RiskSnapshot,
    RouterState,
    RuntimeDiagnostics,
)
from bus.messages.trading import (
    TERMINAL_ORDER_STATUSES,
    ExitScanStatus,
    ExitTrigger,
    Fill,
    OrderEvent,
    OrderIntent,
    RouterEvent,
    Signal,
    Veto,
)

MESSAGE_TYPES: tuple[type[Message], ...] = (
    PositionsSnapshot,
    LedgerUpdate,
    KpiSnapshot,
    NavSample,
    RiskSnapshot,
    RouterState,
    RuntimeDiagnostics,
    FactorDiagnostics,
    Signal,
    Veto,
    OrderIntent,
    OrderEvent,
    Fill,
    RouterEvent,
    ExitTrigger,
    ExitScanStatus,
    Heartbeat,
    ScopeSwitch,
    ReconciliationReport,
    ReconciliationResolution,
    LegacyImport,
    NavPeakReset,
)

# type tag -> {version -> model}
REGISTRY: dict[str, dict[int, type[Message]]] = {}
for _cls in MESSAGE_TYPES:
    REGISTRY.setdefault(_cls.TYPE, {})[_cls.VERSION] = _cls

# state key (file stem under logs/state) -> the message type that replaces it
STATE_DOCUMENTS: dict[str, type[Message]] = {
    cls.STATE_KEY: cls for cls in MESSAGE_TYPES if cls.STATE_KEY is not None
}


__all__ = [
    "MESSAGE_TYPES",
    "REGISTRY",
    "STATE_DOCUMENTS",
    "TERMINAL_ORDER_STATUSES",
    "ExitScanStatus",
    "ExitTrigger",
    "FactorDiagnostics",
    "Fill",
    "Heartbeat",
    "KpiSnapshot",
    "LedgerUpdate",
    "LegacyImport",
    "Message",
    "Model",
    "NavPeakReset",
    "NavSample",
    "OrderEvent",
    "OrderIntent",
    "PositionsSnapshot",
    "ReconciliationReport",
    "ReconciliationResolution",
    "RiskSnapshot",
    "RouterEvent",
    "RouterState",
    "RuntimeDiagnostics",
    "ScopeSwitch",
    "Signal",
    "Veto",
    "utc_now",
]
