"""Run the fake as its own process (for a supervisord group pointed at it):

    python -m tests.venue.binance --port 0 --port-file PATH --keys-file PATH [--config PATH] [...]

--keys-file: JSON, either {"api_key": "secret", ...} or a list of KeySpec objects
({"api_key", "secret", "account", "enable_futures", "enable_reading"}).
--config: JSON of VenueConfig fields (symbols, fees, timers, ...); flags below override it.
--port-file: written (atomically, after the server listens) with the bound port number.
Binds 127.0.0.1 only. SIGTERM or SIGINT stops it cleanly (exit status 0). Run it from the
repository root (or with the root on PYTHONPATH): `tests` is not an installed package.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .config import KeySpec, VenueConfig
from .server import BinanceFake


def _keys(path: Path) -> list[KeySpec]:
    data: Any = json.loads(path.read_text())
    if isinstance(data, dict):
        return [KeySpec(api_key=k, secret=v) for k, v in data.items()]
    return [KeySpec.model_validate(item) for item in data]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.venue.binance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--keys-file", type=Path, help="API keys (JSON)")
    parser.add_argument("--config", type=Path, help="VenueConfig JSON")
    parser.add_argument("--seed", type=int, help="price walk seed")
    parser.add_argument("--tick-interval", type=float, help="price walk step in seconds")
    parser.add_argument("--listen-key-ttl", type=float, help="listenKey validity in seconds")
    parser.add_argument("--fill-chunks", type=int, help="trades per MARKET order")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> VenueConfig:
    config = VenueConfig.model_validate_json(args.config.read_text()) if args.config else VenueConfig()
    updates: dict[str, Any] = {}
    if args.keys_file:
        updates["keys"] = [*config.keys, *_keys(args.keys_file)]
    for flag, field in (("seed", "seed"), ("tick_interval", "tick_interval_s"),
                        ("listen_key_ttl", "listen_key_ttl_s"), ("fill_chunks", "fill_chunks")):
        value = getattr(args, flag)
        if value is not None:
            updates[field] = value
    return VenueConfig.model_validate({**config.model_dump(), **updates})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    fake = BinanceFake(build_config(args), port=args.port).start()
    try:
        if args.port_file:
            _write_atomic(args.port_file, f"{fake.port}\n")
        print(f"binance fake listening on {fake.rest_url} (ws {fake.ws_url})", flush=True)
        stop.wait()
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
