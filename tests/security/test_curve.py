"""CURVE + ZAP allow-list on TCP endpoints, and loopback/ipc-only defaults."""

from __future__ import annotations

import shutil
import stat
import time
from pathlib import Path

import pytest
import zmq

from bus import codec
from bus.codec import BusError
from bus.protocol import ErrorCode
from bus.sender import Sender
from config.settings import Settings, load_settings
from tests.harness import Instance, free_port_base
from tests.support.messages import heartbeat


def _client(settings: Settings, keys: Path, name: str) -> Settings:
    bus = settings.bus.model_copy(update={
        "curve_server_public_cert": keys / "hub.key",
        "curve_client_cert": keys / f"{name}.key_secret",
    })
    return settings.model_copy(update={"bus": bus})


@pytest.fixture
def curve_hub(v7: Instance, tmp_path: Path) -> tuple[Instance, Path]:
    keys = tmp_path / "keys"
    for name, producers in (("hub", ""), ("alice", "executor,sync"), ("mallory", ""), ("bob", "")):
        result = v7.run_cli("keys", "new", name, "--dir", str(keys), *(["--producers", producers] if producers else []))
        assert result.returncode == 0, result.stdout + result.stderr
    assert stat.S_IMODE((keys / "alice.key_secret").stat().st_mode) == 0o600
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(keys / "alice.key", allowed / "alice.key")
    shutil.copy(keys / "bob.key", allowed / "bob.key")
    p = free_port_base(3)
    v7.write_config(
        "[bus]\n"
        f'ingest = "tcp://127.0.0.1:{p}"\nupdates = "tcp://127.0.0.1:{p + 1}"\nsnapshot = "tcp://127.0.0.1:{p + 2}"\n'
        f'curve_server_cert = "{keys / "hub.key_secret"}"\ncurve_allowed_clients_dir = "{allowed}"\n'
    )
    v7.start("state_writer")
    v7.wait_for(lambda: "serving at seq" in v7.logs("state_writer"), 20, "writer to serve")
    return v7, keys


def test_allowed_client_is_served_and_others_are_refused(curve_hub: tuple[Instance, Path]) -> None:
    inst, keys = curve_hub
    alice = Sender(_client(inst.settings, keys, "alice"), "executor")
    try:
        assert alice.send_and_wait(heartbeat(), timeout=15) >= 1
    finally:
        alice.close()

    mallory = Sender(_client(inst.settings, keys, "mallory"), "executor")
    try:
        with pytest.raises(TimeoutError):
            mallory.send_and_wait(heartbeat(), timeout=3)
        assert mallory.stats.acked == 0
    finally:
        mallory.close(flush_timeout=0)

    # A plaintext client gets no handshake with a CURVE server at all.
    ctx = zmq.Context.instance()
    plain = ctx.socket(zmq.DEALER)
    plain.setsockopt(zmq.LINGER, 0)
    # Never block on send: while the refused handshake is torn down and retried there may be
    # no pipe to queue into, and a refusal is exactly what this checks.
    plain.setsockopt(zmq.SNDTIMEO, 2000)
    plain.connect(inst.settings.ingest_endpoint)
    try:
        plain.send(codec.encode_envelope("plain", 1, 1, heartbeat()))
    except zmq.Again:
        pass
    assert not plain.poll(2000, zmq.POLLIN)
    plain.close(0)

    # The hub kept serving the allowed client throughout.
    again = Sender(_client(inst.settings, keys, "alice"), "executor")
    try:
        assert again.send_and_wait(heartbeat(), timeout=15) >= 2
    finally:
        again.close()
    assert inst.procs["state_writer"].poll() is None


def test_a_key_speaks_only_as_the_producers_it_names(curve_hub: tuple[Instance, Path]) -> None:
    """alice.key names executor and sync; bob.key names nobody, so it may speak only as "bob"."""
    inst, keys = curve_hub
    for key, src, allowed in (("alice", "sync", True), ("alice", "router", False), ("bob", "executor", False)):
        sender = Sender(_client(inst.settings, keys, key), src)
        try:
            if allowed:
                assert sender.send_and_wait(heartbeat(src), timeout=15) >= 1
            else:
                with pytest.raises(BusError) as err:
                    sender.send_and_wait(heartbeat(src), timeout=15)
                assert err.value.code is ErrorCode.UNAUTHORIZED and err.value.field == "src", (key, src)
                assert key in err.value.detail
        finally:
            sender.close(flush_timeout=0)


def test_non_loopback_tcp_without_curve_refuses_to_start(v7: Instance) -> None:
    p = free_port_base(1)
    v7.write_config(f'[bus]\ningest = "tcp://0.0.0.0:{p}"\n')
    proc = v7.start("state_writer")
    assert proc.wait(timeout=30) == 2
    assert "CURVE" in v7.logs("state_writer")


def test_defaults_bind_ipc_and_loopback_only(hub: Instance) -> None:
    settings = load_settings({"V7_HOME": str(hub.home)})
    defaults = Settings()
    for endpoint in (defaults.ingest_endpoint, defaults.updates_endpoint, defaults.snapshot_endpoint):
        assert endpoint.startswith("ipc://"), endpoint
    assert defaults.metrics_host == "127.0.0.1"
    assert defaults.dashboard.host == "127.0.0.1"
    run_dir = settings.run_path
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    for name in ("ingest.sock", "updates.sock", "snapshot.sock"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) & 0o077 == 0, name
    # The metrics endpoint answers on loopback and nowhere else.
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", settings.metrics_port("state_writer")), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail("metrics endpoint not listening on 127.0.0.1")
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    port_hex = f"{settings.metrics_port('state_writer'):04X}"
    local = [line.split()[1] for line in listening if line.split()[1].endswith(":" + port_hex)]
    assert local and all(addr.startswith("0100007F:") for addr in local), local
