"""Store views as a stream: published on the commit that changes them, kept by subscribers like documents.

A real state writer (its own process, ipc sockets) on real SQLite, and on PostgreSQL when
V7_TEST_PG_URL is set; the in-process writer tests watch the ingest thread's SQL and move the
store's clock across midnight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import pytest
import zmq
from sqlalchemy import event

from actors.state_writer.server import StateWriter
from actors.state_writer.store import PositionStore
from bus.messages import ImportLegacyPositions, LegacyPosition
from bus.protocol import unpack_seq
from bus.subscriber import Subscriber, Update, ViewChanged, request_snapshot
from tests.harness import Instance
from tests.store.helpers import Backend, bus
from tests.support.messages import fill, intent, marks


def raw_updates(inst: Instance) -> zmq.Socket:
    """A bare SUB socket on the updates endpoint, live (the hub greets every subscription)."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(inst.settings.updates_endpoint)
    assert sub.poll(10_000), "no greeting heartbeat on subscription"
    sub.recv_multipart()
    return sub


def frames_until(sub: zmq.Socket, done, timeout: float = 15) -> list[list[bytes]]:
    got: list[list[bytes]] = []
    deadline = time.monotonic() + timeout
    while not got or not done(got[-1]):
        left = deadline - time.monotonic()
        assert left > 0 and sub.poll(int(left * 1000)), f"timed out; got topics {[f[0] for f in got]}"
        got.append(sub.recv_multipart())
    return got


def test_a_fill_publishes_the_views_it_changes_at_its_seq(store_v7: Instance, backend: Backend) -> None:
    # Ticks 10 s apart: whatever is published here is published by the commit, not by a tick.
    store_v7.write_config(backend.toml(writer={"tick_ms": 10_000}))
    store_v7.start_writer()
    sub = raw_updates(store_v7)
    try:
        with bus(store_v7) as b:
            intent_seq = b.send(intent("i1", "BTCUSDT", "BUY", 2.0, tp=110.0, sl=90.0))
            fill_seq = b.send(fill("t1", "i1", "BTCUSDT", "BUY", 2.0, 100.0, fee=0.2))
            after_seq = b.send(intent("i2", "ETHUSDT", "BUY", 1.0))
        got = frames_until(sub, lambda f: unpack_seq(f[1]) == after_seq and f[0] != b"$hub")
    finally:
        sub.close()
    order = [(f[0], unpack_seq(f[1])) for f in got if f[0] != b"$hub"]
    # Intents change no view; the fill changes open positions and today's P&L (no trade closed), and
    # their frames follow it at its seq, before anything committed later.
    assert order == [(b"submit_order", intent_seq), (b"order_filled", fill_seq),
                     (b"$view:open_positions", fill_seq), (b"$view:pnl_today", fill_seq),
                     (b"submit_order", after_seq)], order
    bodies = {f[0]: msgpack.unpackb(f[2], raw=False) for f in got if f[0].startswith(b"$view:")}
    assert all(len(f) == 3 and len(f[1]) == 8 for f in got)
    body = bodies[b"$view:open_positions"]
    assert set(body) == {"key", "value"} and body["key"] == "open_positions"
    (row,) = body["value"]
    assert (row["symbol"], row["side"], row["qty"], row["tp"], row["opened_seq"]) == ("BTCUSDT", "LONG", 2.0, 110.0,
                                                                                      fill_seq)
    # Exactly what a snapshot of that key returns as of that seq (nothing since changed either view).
    snap = request_snapshot(store_v7.settings, keys=["open_positions", "pnl_today"])
    assert snap.seq == after_seq
    assert snap.state["open_positions"] == body["value"]
    assert snap.state["pnl_today"] == bodies[b"$view:pnl_today"]["value"]


class Dropping(Subscriber):
    """A subscriber that loses the frames a test names (as a full high-water mark would)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.drop: set[tuple[bytes, int]] = set()

    def _on_frames(self, frames: list[bytes], out: list[Update | ViewChanged]) -> bool:
        if len(frames) == 3 and len(frames[1]) == 8 and (frames[0], unpack_seq(frames[1])) in self.drop:
            self.drop.discard((frames[0], unpack_seq(frames[1])))
            return True
        return super()._on_frames(frames, out)


def _positions(sub: Subscriber) -> dict[str, float]:
    return {p["symbol"]: p["qty"] for p in sub.view("open_positions") or []}


def _poll_until(inst: Instance, sub: Subscriber, predicate, what: str) -> list[Update | ViewChanged]:
    """Poll until predicate(everything seen so far) holds; returns what was seen."""
    seen: list[Update | ViewChanged] = []
    inst.wait_for(lambda: (seen.extend(sub.poll(0.1)), predicate(seen))[1], 20, what)
    return seen


def _views_at(seen: list[Update | ViewChanged], seq: int) -> list[str]:
    return [i.key for i in seen if isinstance(i, ViewChanged) and i.seq == seq]


def test_a_subscriber_keeps_views_and_resyncs_when_it_misses_a_frame(store_v7: Instance, backend: Backend) -> None:
    store_v7.write_config(backend.toml() + "[bus]\nheartbeat_s = 0.2\n")  # a lost view frame shows within 0.2 s
    store_v7.start_writer()
    sub = Dropping(store_v7.settings, keys=["open_positions", "pnl_today"])
    try:
        assert sub.wait_synced(10)
        assert sub.view("open_positions") == [] and sub.view("positions_state") is None
        snapshots = sub.snapshots
        with bus(store_v7) as b:
            # Stream order: the fill, then the views it changed, at its seq.
            b.send(intent("i1", "BTCUSDT", "BUY", 1.0))
            seq1 = b.send(fill("t1", "i1", "BTCUSDT", "BUY", 1.0, 100.0))
            # Wait for the last frame the fill publishes (its views may arrive across polls).
            seen = _poll_until(store_v7, sub, lambda got: "pnl_today" in _views_at(got, seq1), "the first fill's views")
            assert _positions(sub) == {"BTCUSDT": 1.0}
            kinds = [(type(i).__name__, i.seq) for i in seen]
            assert kinds.index(("Update", seq1)) < kinds.index(("ViewChanged", seq1))
            assert [i.key for i in seen if isinstance(i, ViewChanged)] == ["open_positions", "pnl_today"]
            assert sub.snapshots == snapshots

            # Updates lost (the fill's message frame): its view frame is ahead of us, so re-snapshot.
            # (One sender: the next message takes the next seq.)
            sub.drop.add((b"order_filled", b.send(intent("i2", "ETHUSDT", "BUY", 2.0)) + 1))
            seq2 = b.send(fill("t2", "i2", "ETHUSDT", "BUY", 2.0, 50.0))
            _poll_until(store_v7, sub, lambda _: sub.snapshots > snapshots, "a re-snapshot after the lost update")
            assert sub.seq >= seq2 and _positions(sub) == {"BTCUSDT": 1.0, "ETHUSDT": 2.0}
            snapshots = sub.snapshots

            # Only the view frame lost: the next hub heartbeat names a newer frame than ours.
            sub.drop.add((b"$view:open_positions", b.send(intent("i3", "SOLUSDT", "SELL", 3.0)) + 1))
            b.send(fill("t3", "i3", "SOLUSDT", "SELL", 3.0, 20.0))
            _poll_until(store_v7, sub, lambda _: sub.snapshots > snapshots, "a re-snapshot after the lost view frame")
            assert _positions(sub) == {"BTCUSDT": 1.0, "ETHUSDT": 2.0, "SOLUSDT": 3.0}
            assert sub.gaps == 2
    finally:
        sub.close()


@contextmanager
def in_process_writer(inst: Instance, store: PositionStore) -> Iterator[StateWriter]:
    """The state writer in this process (its loop on a thread, as its ingest thread)."""
    writer = StateWriter(inst.settings, [store], context=zmq.Context())
    writer.start(serve_metrics=False)
    stop = threading.Event()

    def loop() -> None:
        try:
            writer.run(stop)
        finally:
            writer.shutdown()

    thread = threading.Thread(target=loop, name="writer", daemon=True)
    thread.start()
    try:
        yield writer
    finally:
        stop.set()
        thread.join(30)
        writer.ctx.term()


class Statements:
    """Every SQL statement the store's engine runs, by thread."""

    def __init__(self, store: PositionStore) -> None:
        self.threads: list[str] = []
        event.listen(store.engine, "before_cursor_execute", self._on)

    def _on(self, *_args: Any) -> None:
        self.threads.append(threading.current_thread().name)

    def on_writer(self) -> int:
        return self.threads.count("writer")


def test_snapshots_of_views_run_no_sql(store_v7: Instance, backend: Backend) -> None:
    store = PositionStore(store_v7.settings)
    with in_process_writer(store_v7, store):
        sql = Statements(store)
        with bus(store_v7) as b:
            b.send(intent("i1", "BTCUSDT", "BUY", 1.0), fill("t1", "i1", "BTCUSDT", "BUY", 1.0, 100.0, fee=0.1))
            b.send(fill("t2", "i1", "BTCUSDT", "SELL", 1.0, 104.0, fee=0.1, reduce_only=True))
            b.send(ImportLegacyPositions(
                digest="d" * 64, source_path="/tmp/old.json", source_format="updated_at",
                source_updated=datetime.now(UTC), mode="SIM", account="paper",
                positions=[LegacyPosition(symbol="ETHUSDT", side="SHORT", qty=1.0, entry_price=50.0)]))
        assert sql.on_writer() > 0, "the listener sees the store's statements"
        before = sql.on_writer()
        for _ in range(20):
            state = request_snapshot(store_v7.settings, keys=["pnl_today", "trades_today", "legacy_imports",
                                                                  "open_positions", "reconciliation"]).state
        assert sql.on_writer() == before, "a snapshot request ran SQL on the ingest thread"
        (trade,) = state["trades_today"]
        assert (trade["symbol"], trade["realized_gross"], trade["realized_net"]) == ("BTCUSDT", 4.0, pytest.approx(3.8))
        (scope,) = state["pnl_today"]["scopes"]
        assert scope["realized_net"] == pytest.approx(3.8) and scope["closed_trades"] == 1
        assert [i["imported"] for i in state["legacy_imports"]] == [1]


def test_the_day_end_is_published_without_a_commit(store_v7: Instance, backend: Backend) -> None:
    now = {"t": datetime.now(UTC)}
    store = PositionStore(store_v7.settings, clock=lambda: now["t"])
    with in_process_writer(store_v7, store) as writer:
        with bus(store_v7) as b:
            b.send(intent("i1", "BTCUSDT", "BUY", 1.0), fill("t1", "i1", "BTCUSDT", "BUY", 1.0, 100.0, fee=0.1))
            last = b.send(marks(BTCUSDT=103.0))
        sub = raw_updates(store_v7)
        try:
            now["t"] += timedelta(days=1)  # midnight passes; nothing is sent
            day = now["t"].date().isoformat()

            def new_day(frame: list[bytes]) -> bool:
                # The view the last commit published may still arrive first (it is yesterday's).
                return frame[0] == b"$view:pnl_today" and msgpack.unpackb(frame[2], raw=False)["value"]["day"] == day

            got = frames_until(sub, new_day)
        finally:
            sub.close()
        assert writer.state.seq == last and unpack_seq(got[-1][1]) == last, "a day's end consumes no seq"
        pnl = msgpack.unpackb(got[-1][2], raw=False)["value"]
        (scope,) = pnl["scopes"]
        assert (scope["fees"], scope["unrealized"]) == (0.0, 3.0)  # yesterday's fee stays in yesterday
