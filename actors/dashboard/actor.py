"""The dashboard actor: keeps the facade in sync with the hub and serves the page.

It subscribes to every key and topic (snapshot, then live updates) and never reads a state
file. The positions store's views (open positions, today's P&L, reconciliation) are snapshot
keys that are not streamed: they are asked for again after a fill or reconciliation message
(at most once a second) and every few seconds otherwise. When the hub goes quiet the
subscriber reconnects by itself; meanwhile the page shows a banner and the last known values.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Gauge

from actors.base import Actor
from actors.dashboard.facade import STORE_VIEW_KEYS, DashboardFacade
from actors.dashboard.server import WebServer
from actors.dashboard.web import create_app
from bus.codec import BusError
from bus.messages import ExchangePositionsReported, ImportLegacyPositions, OrderFilled, ResolveMismatch, SwitchScope
from bus.subscriber import SnapshotError, Update, request_snapshot
from config.settings import Settings

log = logging.getLogger(__name__)

# Committed messages after which the store's views are likely to have changed.
_STORE_TRIGGERS = frozenset(cls.TYPE for cls in (OrderFilled, ExchangePositionsReported, ResolveMismatch, SwitchScope,
                                                ImportLegacyPositions))
VIEWS_MIN_INTERVAL_S = 1.0
VIEWS_MAX_INTERVAL_S = 10.0


class DashboardActor(Actor):
    name = "dashboard"
    default_loop_s = 0.5
    wants_updates = True

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        super().__init__(settings, serve_metrics=serve_metrics)
        self.facade = DashboardFacade()
        clients = Gauge("v7_dashboard_clients", "Browsers connected to the live event stream.",
                        registry=self.registry)
        host = settings.dashboard.host
        # Binds now: a busy port or a non-loopback host stops start-up with ConfigError.
        self.web = WebServer(create_app(self.facade, clients, host), host, settings.dashboard.port)
        self._view_keys: list[str] = []
        self._views_dirty = False
        self._views_at = 0.0

    def setup(self) -> None:
        self.web.start()
        self.every(self.loop_s, self.tick, now=True)

    def on_resync(self) -> None:
        assert self.subscriber is not None
        state = self.subscriber.snapshot_state
        self.facade.load_snapshot(state)
        # The full snapshot tells which store views this hub serves (none without a store).
        self._view_keys = [k for k in STORE_VIEW_KEYS if k in state]
        self._views_at = time.monotonic()
        self._report_hub()

    def on_update(self, update: Update) -> None:
        self.facade.apply(update.msg)
        if update.topic in _STORE_TRIGGERS:
            self._views_dirty = True

    def tick(self) -> None:
        self._report_hub()
        self._refresh_views()

    def _refresh_views(self) -> None:
        sub = self.subscriber
        assert sub is not None
        since = time.monotonic() - self._views_at
        due = since >= VIEWS_MAX_INTERVAL_S or (self._views_dirty and since >= VIEWS_MIN_INTERVAL_S)
        if not self._view_keys or not sub.hub_alive or not due:
            return
        self._views_at = time.monotonic()
        self._views_dirty = False
        try:
            snap = request_snapshot(self.settings, self._view_keys, timeout_s=2.0)
        except (SnapshotError, BusError) as exc:
            log.info("store views not refreshed: %s", exc)
            return
        self.facade.load_views(snap.state)

    def _report_hub(self) -> None:
        sub = self.subscriber
        assert sub is not None
        self.facade.set_hub(
            synced=sub.synced, seq=sub.seq, last_seen_mono=sub.hub_last_seen or None,
            silent_after_s=sub.silent_after_s,
            detail=f"no answer from the state writer at {self.settings.snapshot_endpoint}; retrying",
        )

    def teardown(self) -> None:
        self.web.stop()
