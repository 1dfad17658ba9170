"""The dashboard actor: keeps the facade in sync with the hub and serves the page.

It subscribes to every key and topic and never reads a state file: the snapshot gives every
document and the positions store's views, then committed messages update the documents and
the hub's `$view:` frames update the views (open positions, today's P&L, active scope,
reconciliation) as each commit changes them. Nothing is polled. When the hub goes quiet the
subscriber reconnects by itself; meanwhile the page shows a banner and the last known values.
"""

from __future__ import annotations

import logging

from prometheus_client import Gauge

from actors.base import Actor
from actors.dashboard.facade import STORE_VIEW_KEYS, DashboardFacade
from actors.dashboard.server import WebServer
from actors.dashboard.web import create_app
from bus.subscriber import Update
from config.settings import Settings

log = logging.getLogger(__name__)


class DashboardActor(Actor):
    name = "dashboard"
    default_loop_s = 0.5
    wants_updates = True

    def __init__(self, settings: Settings, *, serve_metrics: bool = True) -> None:
        super().__init__(settings, serve_metrics=serve_metrics)
        # NAV comes once per sync loop: five missed readings (at least a minute) is a gap in the chart.
        nav_gap_s = max(60.0, 5 * settings.loop_interval("sync", 1.0))
        self.facade = DashboardFacade(mode=settings.mode, network=settings.network, account=settings.account,
                                      nav_gap_s=nav_gap_s)
        clients = Gauge("v7_dashboard_clients", "Browsers connected to the live event stream.",
                        registry=self.registry)
        host = settings.dashboard.host
        # Binds now: a busy port or a non-loopback host stops start-up with ConfigError.
        self.web = WebServer(create_app(self.facade, clients, host), host, settings.dashboard.port)

    def setup(self) -> None:
        self.web.start()
        self.every(self.loop_s, self.tick, now=True)

    def on_resync(self) -> None:
        assert self.subscriber is not None
        self.facade.load_snapshot(self.subscriber.snapshot_state)
        self._report_hub()

    def on_update(self, update: Update) -> None:
        self.facade.apply(update.msg)

    def on_view(self, key: str, value: object) -> None:
        if key in STORE_VIEW_KEYS:
            self.facade.load_views({key: value})

    def tick(self) -> None:
        self._report_hub()

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
