"""`v7 schemas [--write|--check]`: JSON Schemas and the state-file manifest, from the models."""

from __future__ import annotations

import argparse

from bus.manifest import stale_files, write_all
from config.settings import REPO_ROOT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemas", help="generate (or check) docs/schemas and docs/v7_manifest.json")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the generated files (default)")
    mode.add_argument("--check", action="store_true", help="exit 1 if any committed copy is stale")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.check:
        stale = stale_files(REPO_ROOT)
        for rel in stale:
            print(f"stale: {rel}")
        return 1 if stale else 0
    for rel in write_all(REPO_ROOT):
        print(f"wrote {rel}")
    return 0
