"""Metrics probe: scrapes the actors of one host every 0.2 s and appends what they report.

    python -m tests.multihost.probe --target executor=127.0.0.1:9172 ... --out FILE --stop-file FILE

It runs inside the actors' namespace (their metrics listen on that namespace's loopback, as on
a real host), so the test can see them while the link to the hub is cut. One JSON line per
round: {"t": unix time, "actors": {name: {metric: value} | null}} (null: not answering). The
test reads complete lines only, so a line being written is never half-read.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tests.support.metrics import fetch, parse

WATCHED = ("v7_actor_hub_unreachable", "v7_actor_degraded", "v7_actor_hub_synced", "v7_sender_connected",
           "v7_sender_outbox_depth", "v7_subscriber_gaps", "v7_subscriber_snapshots", "v7_subscriber_seq")


def scrape(address: str) -> dict[str, float] | None:
    try:
        text = fetch(f"http://{address}/metrics", timeout=1)
    except OSError:
        return None
    out: dict[str, float] = {}
    for (name, _labels), value in parse(text).items():
        if name in WATCHED or name.removesuffix("_total") in WATCHED:
            out[name.removesuffix("_total")] = value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", default=[], help="NAME=HOST:PORT (repeat)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--every", type=float, default=0.2)
    args = parser.parse_args()
    targets = dict(t.split("=", 1) for t in args.target)
    with args.out.open("a") as out:
        while not args.stop_file.exists():
            started = time.monotonic()
            line = {"t": time.time(), "actors": {name: scrape(addr) for name, addr in targets.items()}}
            out.write(json.dumps(line) + "\n")
            out.flush()
            time.sleep(max(0.0, args.every - (time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
