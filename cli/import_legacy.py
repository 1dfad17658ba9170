"""`v7 import-legacy PATH`: bring open positions from an old positions_state.json into the store.

The file is read and checked here, then sent to the state writer as one message; the writer
applies it once per file (a second run changes nothing and says so), skips any symbol the
store already has open, and records every decision in the audit trail.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bus.codec import BusError
from bus.messages import LegacyImportRecord
from cli.positions import fetch_views, send_to_writer
from config.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-legacy", help="import open positions from an old positions_state.json (once)")
    p.add_argument("path", type=Path)
    p.add_argument("--mode", choices=("SIM", "LIVE"), help="scope of the imported positions (default: configured)")
    p.add_argument("--account", help="default: the configured account")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings = load_settings()
    mode, account = args.mode or settings.mode, args.account or settings.account
    # Imported here: the store package pulls in SQLAlchemy, which every other `v7` command can skip.
    from actors.state_writer.store.legacy_file import LegacyFileError, parse_legacy

    try:
        msg = parse_legacy(args.path, mode, account)
    except LegacyFileError as exc:
        print(f"not imported: {exc}", file=sys.stderr)
        return 2
    before = fetch_views(settings, ["legacy_imports"])
    if before is None:
        print("state writer not answering; nothing imported", file=sys.stderr)
        return 1
    earlier = [LegacyImportRecord.model_validate(r) for r in before["legacy_imports"] or []]
    if any(r.digest == msg.digest for r in earlier):
        print(f"{args.path}: already imported; sending again only records the attempt")
    try:
        seq = send_to_writer(settings, msg)
    except (TimeoutError, BusError) as exc:
        print(f"not imported: {exc}", file=sys.stderr)
        return 1
    after = fetch_views(settings, ["legacy_imports"]) or {"legacy_imports": []}
    record = next((LegacyImportRecord.model_validate(r) for r in after["legacy_imports"] or []
                   if r["digest"] == msg.digest), None)
    if record is None or record.seq != seq:
        print(f"{args.path}: nothing imported (this file was imported before, at seq "
              f"{record.seq if record else '?'}); recorded at seq {seq}")
        return 0
    print(f"{args.path} ({msg.source_format} format, {len(msg.positions)} open position(s)) -> {mode}/{account}: "
          f"imported {record.imported}, skipped {record.skipped} already open (seq {seq})")
    return 0
