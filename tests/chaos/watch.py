"""Chaos watcher: a real bus subscriber that records every snapshot and update it applies.

    python -m tests.chaos.watch --out FILE --stop-file FILE   (V7_HOME set)

The record is the subscriber's whole history in order: ("S", seq, epoch) for each snapshot it
took (first join, gap, hub restart) and ("U", seq, src, inc, sseq) for each update it applied.
The chaos test checks it against the journal: updates are gap-free between snapshots, never
repeated, and each one is the message the journal holds at that seq.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bus.subscriber import Subscriber, Update, ViewChanged
from config.settings import load_settings
from tests.chaos.procs import write_result


class RecordingSubscriber(Subscriber):
    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.history: list[list[object]] = []

    def _resnapshot(self) -> bool:
        ok = super()._resnapshot()
        if ok:
            self.history.append(["S", self.snapshot_seq, self.epoch])
        return ok

    def _on_frames(self, frames: list[bytes], out: list[Update | ViewChanged]) -> bool:
        before = len(out)
        ok = super()._on_frames(frames, out)
        for update in out[before:]:
            if isinstance(update, ViewChanged):
                continue  # views are not journal records: the history checks only those
            env = update.envelope
            self.history.append(["U", update.seq, env.src, env.inc, env.sseq])
        return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    args = parser.parse_args()
    sub = RecordingSubscriber(load_settings())
    while not args.stop_file.exists():
        sub.poll(0.1)
    # Catch up with what the hub committed before the stop (the test waits for quiet first).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sub.poll(0.1)
    summary = {"history": sub.history, "snapshots": sub.snapshots, "gaps": sub.gaps, "reconnects": sub.reconnects,
               "undecodable": sub.undecodable, "seq": sub.seq}
    write_result(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
