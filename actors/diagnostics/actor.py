"""The diagnostics actor: folds every committed message into runtime_diagnostics and sends it to the hub.

On its first sync it restores counters and timestamps from the `runtime_diagnostics` document
in the hub snapshot (and heartbeats from `heartbeats`), so a restart neither resets counts nor
turns known timestamps into "never seen". Until then it publishes nothing: a document of zeros
would overwrite the real one.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

from actors.base import Actor
from actors.diagnostics.liveness import compute_liveness, liveness_stamps
from actors.diagnostics.metrics import DiagnosticsCollector
from actors.diagnostics.processes import ProcessWatch
from actors.diagnostics.supervisor import SupervisorProbe
from actors.diagnostics.tracker import DiagnosticsTracker
from bus.messages import Heartbeat, RuntimeDiagnostics, RuntimeDiagnosticsBlock, SupervisorStatus, utc_now
from bus.subscriber import Update
from config.settings import Settings
from config.strategy import DiagnosticsConfig

log = logging.getLogger(__name__)

# Parts of the block that move every second on their own; a change elsewhere is sent at once.
_VOLATILE = {"liveness": {"details", "clock_skew_s"}, "actors": {"__all__": {"age_s", "reason"}},
             "supervisor": {"checked_at"}}


class DiagnosticsActor(Actor):
    name = "diagnostics"
    default_loop_s = 1.0
    wants_updates = True
    subscribe_keys = ("runtime_diagnostics", "heartbeats")

    def __init__(self, settings: Settings, cfg: DiagnosticsConfig, *, serve_metrics: bool = True) -> None:
        super().__init__(settings, serve_metrics=serve_metrics)
        self.cfg = cfg
        self.tracker = DiagnosticsTracker(cfg)
        self.processes = ProcessWatch(cfg.heartbeat_missed_intervals, cfg.liveness.clock_skew_tolerance_seconds)
        self.probe = SupervisorProbe(settings, cfg.supervisor_poll_seconds)
        self.restored = False
        self.latest: RuntimeDiagnosticsBlock | None = None
        self._published_key = ""
        self._published_at = 0.0
        self.registry.register(DiagnosticsCollector(lambda: self.latest))

    # --- bus -----------------------------------------------------------------------------------

    def setup(self) -> None:
        if not self.cfg.enabled:
            log.warning("diagnostics.enabled is false in the strategy config: publishing nothing")
            return
        self.probe.start()
        self.every(self.loop_s, self.tick, now=True)

    def on_resync(self) -> None:
        assert self.subscriber is not None
        snap = self.subscriber.snapshot_state
        self.processes.restore(snap.get("heartbeats"))
        if not self.restored:
            # Only the first snapshot: later ones carry our own, older, document.
            if self.tracker.restore(snap.get("runtime_diagnostics")):
                log.info("restored counters from the hub snapshot at seq %d: %d signals, %d orders, %d vetoes",
                         self.subscriber.seq, self.tracker.veto.total_signals, self.tracker.veto.total_orders,
                         self.tracker.veto.total_vetoes)
            self.restored = True

    def on_update(self, update: Update) -> None:
        msg = update.msg
        if isinstance(msg, Heartbeat):
            self.processes.observe(msg)
        else:
            self.tracker.apply(msg)

    # --- the loop ------------------------------------------------------------------------------

    def evaluate(self, now: datetime) -> RuntimeDiagnosticsBlock:
        assert self.subscriber is not None
        if self.subscriber.synced:
            since = time.monotonic() - self.subscriber.hub_last_seen
            self.processes.observe_hub(now - timedelta(seconds=since), self.subscriber.silent_after_s)
        reading = self.probe.reading()
        self.processes.set_supervisor(reading.states)
        liveness = compute_liveness(self.cfg.liveness, liveness_stamps(self.tracker.veto, self.tracker.exits), now)
        return self.tracker.block(
            liveness=liveness,
            actors=self.processes.evaluate(now),
            supervisor=SupervisorStatus(reachable=reading.states is not None, checked_at=reading.checked_at,
                                        detail=reading.detail),
        )

    def tick(self) -> None:
        if not self.cfg.enabled or not self.restored:
            return
        now = datetime.now(UTC)
        block = self.evaluate(now)
        self.latest = block
        key = json.dumps(block.model_dump(mode="json", exclude=_VOLATILE), sort_keys=True)
        due = time.monotonic() - self._published_at >= self.cfg.publish_interval_seconds
        if key != self._published_key or due:
            self.publish(RuntimeDiagnostics(scope=self.scope, updated_at=now, runtime_diagnostics=block))
            self._published_key = key
            self._published_at = time.monotonic()

    def teardown(self) -> None:
        self.probe.stop()
        if self.cfg.enabled and self.restored:
            # The last counts go out before the outbox is flushed, so a clean restart loses none.
            now = utc_now()
            self.publish(RuntimeDiagnostics(scope=self.scope, updated_at=now, runtime_diagnostics=self.evaluate(now)))
