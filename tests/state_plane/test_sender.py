"""The Sender against a scripted hub: a plain ROUTER socket in the test speaking the protocol.

The real hub is used everywhere else; here the test plays the hub so it can lose frames,
answer "out of order" and stay silent on purpose, which a healthy hub never does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zmq

from bus.messages import Heartbeat
from bus.sender import OutboxFull, Sender
from config.settings import Settings, load_settings
from tests.harness import free_port_base
from tests.support.messages import heartbeat, position, positions


class ScriptedHub:
    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.seq = 0

    def recv(self, timeout: float = 10.0) -> tuple[bytes, dict[str, Any]]:
        assert self.sock.poll(int(timeout * 1000)), "nothing received"
        identity, frame = self.sock.recv_multipart()
        return identity, msgpack.unpackb(frame, raw=False)

    def quiet(self, wait_s: float) -> bool:
        return not self.sock.poll(int(wait_s * 1000))

    def reply(self, identity: bytes, *items: list[Any]) -> None:
        self.sock.send_multipart([identity, msgpack.packb(list(items))])

    def ack(self, identity: bytes, env: dict[str, Any]) -> int:
        self.seq += 1
        self.reply(identity, ["A", env["sseq"], self.seq])
        return self.seq

    def close(self) -> None:
        self.sock.close(0)


@pytest.fixture
def wire(tmp_path) -> Iterator[tuple[Settings, ScriptedHub]]:
    endpoint = f"tcp://127.0.0.1:{free_port_base(1)}"
    settings = load_settings({"V7_HOME": str(tmp_path), "V7_BUS__INGEST": endpoint})
    hub = ScriptedHub(endpoint)
    yield settings, hub
    hub.close()


def _telemetry(i: int = 0) -> Heartbeat:
    return heartbeat(f"a{i}", pid=1)


def test_frames_carry_identity_and_arrive_in_order(wire) -> None:
    settings, hub = wire
    with Sender(settings, "ordered") as sender:
        futures = [sender.submit(positions(position(realized=float(i)))) for i in range(50)]
        seen = []
        for _ in range(50):
            identity, env = hub.recv()
            assert set(env) == {"src", "inc", "sseq", "oldest", "ts", "msg"}
            assert env["src"] == "ordered" and env["inc"] == sender.incarnation
            assert 1 <= env["oldest"] <= env["sseq"]
            seen.append(env["sseq"])
            hub.ack(identity, env)
        assert seen == list(range(1, 51))
        assert [f.result(5) for f in futures] == list(range(1, 51))
        assert sender.outbox_depth == 0


def test_out_of_order_answer_rewinds_to_the_oldest_alone(wire) -> None:
    settings, hub = wire
    with Sender(settings, "rewinder") as sender:
        futures = [sender.submit(positions(position(realized=float(i)))) for i in range(5)]
        first = [hub.recv() for _ in range(5)]
        # Pretend sseq 1 was lost on the way: answer "out of order, expected 1" to the others.
        identity = first[0][0]
        for _id, env in first[1:]:
            hub.reply(identity, ["O", env["sseq"], 1])
        identity, probe = hub.recv()
        assert probe["sseq"] == 1 and probe["oldest"] == 1  # the oldest, alone ...
        assert hub.quiet(0.3)  # ... nothing else until it is answered
        hub.ack(identity, probe)
        rest = [hub.recv() for _ in range(4)]
        assert [env["sseq"] for _i, env in rest] == [2, 3, 4, 5]
        for _i, env in rest:
            hub.ack(identity, env)
        assert [f.result(5) for f in futures] == [1, 2, 3, 4, 5]
        assert sender.stats.rewinds == 1 and sender.stats.out_of_order == 4


def test_unanswered_message_is_resent_after_the_timeout(wire) -> None:
    settings, hub = wire
    with Sender(settings, "patient", resend_after_s=0.3) as sender:
        future = sender.submit(positions(position()))
        _identity, first = hub.recv()
        started = time.monotonic()
        identity, again = hub.recv(timeout=5)  # ignored the first time: it comes back
        assert time.monotonic() - started >= 0.2
        assert again["sseq"] == first["sseq"] and again["msg"] == first["msg"] and again["ts"] == first["ts"]
        hub.reply(identity, ["D", again["sseq"], 77])  # the hub had committed it after all
        assert future.result(5) == 77
        assert sender.stats.resent >= 1 and sender.stats.duplicates == 1


def test_nack_raises_with_code_and_field(wire) -> None:
    settings, hub = wire
    with Sender(settings, "refused") as sender:
        result: dict[str, BaseException] = {}

        def call() -> None:
            try:
                sender.send_and_wait(positions(position()), timeout=5)
            except BaseException as exc:  # handed to the test thread
                result["exc"] = exc

        t = threading.Thread(target=call)
        t.start()
        identity, env = hub.recv()
        hub.reply(identity, ["N", env["sseq"], "contract_breach", "positions.0", "bad row"])
        t.join(5)
        exc = result["exc"]
        assert type(exc).__name__ == "BusError"
        assert exc.code.value == "contract_breach" and exc.field == "positions.0"  # type: ignore[attr-defined]
        assert sender.outbox_depth == 0


def test_full_outbox_drops_telemetry_never_durable(tmp_path) -> None:
    # No hub at all: nothing is ever sent or answered.
    settings = load_settings({"V7_HOME": str(tmp_path)})
    with Sender(settings, "crowded", outbox_max=10) as sender:
        assert all(sender.send(_telemetry(i)) is not None for i in range(5))
        assert sender.send(_telemetry()) is None  # telemetry beyond half the outbox: dropped, counted
        assert sender.stats.dropped_telemetry == 1
        # The other half is kept for durable messages.
        for i in range(5):
            assert sender.send(positions(position(realized=float(i))), wait_room_s=0.2) is not None
        assert sender.outbox_depth == 10
        # Full, and the telemetry in it was never sent (evicting it would leave a gap in the
        # sseqs): a durable send waits for room, then says so; nothing is dropped.
        with pytest.raises(OutboxFull):
            sender.send(positions(position()), wait_room_s=0.2)
        assert sender.outbox_depth == 10 and sender.stats.dropped_telemetry == 1
        sender.close(flush_timeout=0)


def test_durable_messages_evict_telemetry_already_sent(wire) -> None:
    settings, hub = wire
    with Sender(settings, "crowded", outbox_max=10) as sender:
        for i in range(5):
            sender.send(_telemetry(i))
        for i in range(5):
            sender.send(positions(position(realized=float(i))))
        for _ in range(10):
            hub.recv()  # all ten are on the wire; none is answered
        # Each further durable message takes the place of the oldest telemetry, without waiting.
        for i in range(5):
            assert sender.send(positions(position(realized=float(10 + i))), wait_room_s=0.5) is not None
        assert sender.stats.dropped_telemetry == 5
        assert sender.outbox_depth == 10
        # Full of durable messages: a durable send waits, then says so; nothing is dropped.
        with pytest.raises(OutboxFull):
            sender.send(positions(position()), wait_room_s=0.2)
        assert sender.outbox_depth == 10
        sender.close(flush_timeout=0)


def test_concurrent_callers_never_share_an_sseq(wire) -> None:
    settings, hub = wire
    with Sender(settings, "crowd", outbox_max=20) as sender:
        stop = threading.Event()
        sseqs: list[int] = []

        def serve() -> None:
            while not stop.is_set():
                if hub.sock.poll(50):
                    identity, frame = hub.sock.recv_multipart()
                    env = msgpack.unpackb(frame, raw=False)
                    sseqs.append(env["sseq"])
                    hub.ack(identity, env)

        server = threading.Thread(target=serve)
        server.start()
        callers = [threading.Thread(target=lambda: [sender.send_and_wait(positions(position()), timeout=20)
                                                     for _ in range(40)]) for _ in range(6)]
        for c in callers:
            c.start()
        for c in callers:
            c.join(60)
        stop.set()
        server.join(5)
        assert sorted(set(sseqs)) == list(range(1, 241))


def test_refused_handshake_is_counted_and_said(tmp_path, caplog) -> None:
    """A hub that does not accept our CURVE handshake: the sender says why instead of waiting mute."""
    import zmq.auth

    keys = tmp_path / "keys"
    keys.mkdir()
    zmq.auth.create_certificates(keys, "hub")
    zmq.auth.create_certificates(keys, "impostor")
    zmq.auth.create_certificates(keys, "client")
    endpoint = f"tcp://127.0.0.1:{free_port_base(1)}"
    hub = zmq.Context.instance().socket(zmq.ROUTER)
    hub.setsockopt(zmq.LINGER, 0)
    hub_public, hub_secret = zmq.auth.load_certificate(keys / "hub.key_secret")
    hub.curve_publickey, hub.curve_secretkey, hub.curve_server = hub_public, hub_secret, True
    hub.bind(endpoint)
    # The client believes the hub's key is the impostor's: the CURVE handshake cannot succeed.
    settings = load_settings({"V7_HOME": str(tmp_path), "V7_BUS__INGEST": endpoint,
                              "V7_BUS__CURVE_SERVER_PUBLIC_CERT": str(keys / "impostor.key"),
                              "V7_BUS__CURVE_CLIENT_CERT": str(keys / "client.key_secret")})
    try:
        with caplog.at_level("ERROR", logger="bus.sender"), Sender(settings, "refused-keys") as sender:
            sender.send(positions(position()))
            deadline = time.monotonic() + 10
            while sender.stats.handshake_failures == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sender.stats.handshake_failures >= 1
            assert not sender.connected and sender.outbox_depth == 1  # kept, not dropped
            sender.close(flush_timeout=0)
        assert "handshake with" in caplog.text and "failed" in caplog.text
    finally:
        hub.close(0)
