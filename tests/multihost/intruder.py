"""A client the hub must refuse across the link: a CURVE key not in its allow-list, and plaintext.

    python -m tests.multihost.intruder --key-dir DIR   (V7_HOME: the actor host's, inside its namespace)

Exit 0 when both were refused (no answer, and the CURVE handshake seen failing), 1 naming
what got in. Run on the actor host while the group trades there with allowed keys.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import zmq

from bus import codec
from bus.messages import Heartbeat, utc_now
from bus.sender import Sender
from config.settings import load_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--key-dir", type=Path, required=True)
    args = parser.parse_args()
    v7 = Path(sys.executable).parent / "v7"
    subprocess.run([str(v7), "keys", "new", "intruder", "--dir", str(args.key_dir), "--producers", "executor"],
                   check=True, capture_output=True)
    settings = load_settings()
    bus = settings.bus.model_copy(update={"curve_client_cert": args.key_dir / "intruder.key_secret"})
    settings = settings.model_copy(update={"bus": bus})
    heartbeat = Heartbeat(actor="executor", pid=os.getpid(), started_at=utc_now(), interval_s=1.0)
    problems = []
    sender = Sender(settings, "executor")
    try:
        sender.send_and_wait(heartbeat, timeout=4)
        problems.append("a key outside the allow-list was ACKed")
    except TimeoutError:
        if sender.stats.handshake_failures == 0:
            problems.append("no answer, but no failed handshake either (was the hub reachable at all?)")
    finally:
        sender.close(flush_timeout=0)
    plain = zmq.Context.instance().socket(zmq.DEALER)
    plain.setsockopt(zmq.LINGER, 0)
    plain.setsockopt(zmq.SNDTIMEO, 2000)
    plain.connect(settings.ingest_endpoint)
    try:
        plain.send(codec.encode_envelope("plain", 1, 1, heartbeat))
    except zmq.Again:
        pass  # no pipe: the handshake was refused, which is the point
    if plain.poll(2000, zmq.POLLIN):
        problems.append("a plaintext client got an answer")
    plain.close(0)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
