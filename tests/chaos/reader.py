"""A state-file reader: reads every `logs/state/*.json` over and over and validates each read.

Every read must parse and validate against its model, contract checks included: an empty,
torn, partial or zeroed file (NUL bytes, a row with a size but no prices) is a violation. A
file that does not exist yet is not read. Used as a thread by the disk-fault tests and as a
process of its own by the chaos test:

    python -m tests.chaos.reader --state-dir DIR --out FILE --stop-file FILE [--hz 50]

The process writes its counts to --out (JSON) when the stop file appears.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bus.messages import STATE_DOCUMENTS

MAX_KEPT = 50
NUL = b"\x00"


def check(key: str, raw: bytes) -> str | None:
    """Why this read of state file `key` is not a good file, or None."""
    if not raw:
        return f"{key}: empty file"
    nul = raw.find(NUL)
    if nul >= 0:
        return f"{key}: NUL bytes (zeroed) at {nul} of {len(raw)}"
    try:
        STATE_DOCUMENTS[key].model_validate(json.loads(raw))
    except ValueError as exc:  # json and pydantic errors are ValueErrors
        return f"{key}: {str(exc)[:300]} in {raw[:120]!r}...{raw[-60:]!r} ({len(raw)} bytes)"
    return None


@dataclass
class Reads:
    reads: int = 0
    rounds: int = 0
    violations: int = 0
    examples: list[str] = field(default_factory=list)
    per_file: dict[str, int] = field(default_factory=dict)

    def once(self, state_dir: Path) -> None:
        for key in STATE_DOCUMENTS:
            try:
                raw = (state_dir / f"{key}.json").read_bytes()
            except FileNotFoundError:
                continue
            self.reads += 1
            self.per_file[key] = self.per_file.get(key, 0) + 1
            problem = check(key, raw)
            if problem is not None:
                self.violations += 1
                if len(self.examples) < MAX_KEPT:
                    self.examples.append(problem)
        self.rounds += 1


class ReaderThread(threading.Thread):
    """Reads the state directory at `hz` rounds a second until stopped."""

    def __init__(self, state_dir: Path, hz: float = 100.0) -> None:
        super().__init__(daemon=True, name="state-file-reader")
        self.state_dir = state_dir
        self.period = 1.0 / hz
        self.result = Reads()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.result.once(self.state_dir)
            self._stop_event.wait(self.period)

    def stop(self) -> Reads:
        self._stop_event.set()
        self.join(timeout=10)
        return self.result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--hz", type=float, default=50.0)
    args = parser.parse_args()
    result = Reads()
    period = 1.0 / args.hz
    started = time.monotonic()
    while not args.stop_file.exists():
        result.once(args.state_dir)
        time.sleep(period)
    summary = {**result.__dict__, "seconds": time.monotonic() - started}
    args.out.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
