"""The hub down for half a minute (`make test`) and a minute (`make chaos`): senders' memory
stays bounded, telemetry may drop (counted),
durable messages (fills, order intents, positions) are never dropped.

A load process (`tests.chaos.load`: two senders, outbox of 2 000 messages each, no limit of
its own on messages in flight) streams fills, intents, positions snapshots and heartbeats.
The state writer is killed (-9) and stays down while the load's RSS is sampled
from /proc. Then it comes back, and every durable message the load ever queued is ACKed and
in the journal at the seq its ACK named.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from bus.subscriber import request_status
from tests.chaos.audit import ack_violations
from tests.chaos.procs import helper_processes, spawn
from tests.harness import instance
from tests.trading.group import committed

OUTBOX = 2000
TOML = f"""
[sender]
outbox_max = {OUTBOX}

[writer]
snapshot_every_s = 3600
snapshot_every_messages = 10000000
"""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.mark.parametrize("down_s", [30, pytest.param(60, marks=pytest.mark.slow)])
def test_hub_down_bounds_memory_and_drops_no_durable_message(tmp_path: Path, down_s: int) -> None:
    with instance(tmp_path, TOML) as inst, helper_processes() as started:
        out = inst.home / "chaos"
        out.mkdir()
        inst.start_writer()
        load = spawn(inst, "tests.chaos.load", "--senders", "2", "--rate", "50", "--window", "1000000",
                      "--out", str(out / "load.json"), "--stop-file", str(out / "stop-load"))
        started.append(load)
        inst.wait_for(lambda: request_status(inst.settings)["seq"] > 500, 60, "the load to be flowing")

        inst.kill("state_writer", signal.SIGKILL)
        down_at = time.monotonic()
        rss: list[tuple[float, int]] = []
        while (elapsed := time.monotonic() - down_at) < down_s:
            assert load.poll() is None, inst.logs("load")[-3000:]
            rss.append((elapsed, _rss_kib(load.pid)))
            time.sleep(1.0)
        inst.start_writer(timeout=60)
        time.sleep(2.0)  # the senders reconnect and drain their outboxes while the load goes on
        (out / "stop-load").touch()
        assert load.wait(timeout=300) == 0, inst.logs("load")[-3000:]

        ledgers = json.loads((out / "load.json").read_text())
        violations = ack_violations(committed(inst), ledgers)
        assert not violations, violations[:20]
        sent = sum(ledger["sent"] for ledger in ledgers)
        acked = sum(len(ledger["acked"]) for ledger in ledgers)
        dropped = sum(ledger["telemetry_dropped"] for ledger in ledgers)
        assert acked == sent  # every durable message queued, before, during and after the outage
        # The outbox filled (the load never waited on its own) and never exceeded its bound.
        assert [ledger["max_outbox"] for ledger in ledgers] == [OUTBOX] * len(ledgers)
        assert dropped > 0  # telemetry gave way to durable messages, and was counted
        # Memory: once the outboxes are full (well inside 20 s at this rate) it stays flat.
        settled = [kib for t, kib in rss if t >= 20]
        assert max(settled) <= settled[0] * 1.10 + 4096, rss
        print(f"\nhub down {down_s}s: durable sent={sent} acked={acked} telemetry dropped={dropped} "
              f"load RSS KiB at 20s={settled[0]} max after={max(settled)}")
