"""What the positions store holds in memory, shared by the modules that apply each concern.

Loaded from the database at `open()` (and again at `reopen()`), then changed only by the
commit path, one committed message at a time. The views are rendered from it
(`views.py`); the database follows it inside each batch's transaction (`unit.py`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from actors.state_writer.store.metrics import StoreMetrics
from actors.state_writer.store.positions import EntryInfo, Position
from actors.state_writer.store.unit import Issue
from bus.messages import ActiveScope
from config.settings import StoreSettings

Key = tuple[str, str, str]  # (mode, account, symbol)

INTENT_CACHE = 4096  # intents remembered for their TP/SL/TTL; older ones are read back from the database
INFLIGHT_MAX = 10_000  # intents in flight remembered for reconciliation's "settled" test


@dataclass(slots=True, kw_only=True)
class StoreState:
    cfg: StoreSettings
    metrics: StoreMetrics
    active: ActiveScope
    positions: dict[Key, Position] = field(default_factory=dict)
    issues: dict[Key, Issue] = field(default_factory=dict)
    # 'MODE/account' -> seq of the last report that carried exchange data
    last_report_seq: dict[str, int] = field(default_factory=dict)
    # time of the newest committed fill per position key (a report read before it is not settled)
    last_fill_ts: dict[Key, datetime] = field(default_factory=dict)
    intents: OrderedDict[str, EntryInfo] = field(default_factory=OrderedDict)
    # intent id -> the key it trades, until its order is done
    inflight: OrderedDict[str, Key] = field(default_factory=OrderedDict)

    def remember_intent(self, intent_id: str, info: EntryInfo) -> None:
        self.intents[intent_id] = info
        self.intents.move_to_end(intent_id)
        while len(self.intents) > INTENT_CACHE:
            self.intents.popitem(last=False)

    def track_inflight(self, intent_id: str, key: Key) -> None:
        self.inflight[intent_id] = key
        while len(self.inflight) > INFLIGHT_MAX:
            self.inflight.popitem(last=False)
