"""`v7 schemas [--write|--check]`: JSON Schemas, the manifest and the doc tables, from the models."""

from __future__ import annotations

import argparse
from pathlib import Path

from bus.manifest import generated_files, stale_files
from config.settings import REPO_ROOT


def write_all(root: Path) -> list[str]:
    """Write every generated artefact whose committed copy differs; returns what changed."""
    written = []
    for rel, content in generated_files(root).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            written.append(rel)
    return written


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemas", help="generate (or check) docs/schemas, docs/v7_manifest.json and doc tables")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the generated files (default)")
    mode.add_argument("--check", action="store_true", help="exit 1 if any committed copy is stale")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.check:
        stale = stale_files(REPO_ROOT)
        for rel in stale:
            print(f"stale: {rel} (run `v7 schemas --write`)")
        return 1 if stale else 0
    for rel in write_all(REPO_ROOT):
        print(f"wrote {rel}")
    return 0
