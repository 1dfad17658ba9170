"""`v7 validate [STATE_DIR]`: check every state file against its model.

Exit 1 naming the file and field on the first kind of violation (all are listed); exit 0
with a one-line summary per file otherwise. Missing files are reported and are a violation
only with `--require-all`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bus.messages import STATE_DOCUMENTS
from config.settings import ConfigError, load_settings


@dataclass(frozen=True)
class FileReport:
    key: str
    path: Path
    ok: bool
    detail: str


def validate_file(key: str, path: Path) -> FileReport:
    if not path.exists():
        return FileReport(key, path, False, "missing")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return FileReport(key, path, False, f"not valid JSON: {exc}")
    if not isinstance(data, dict):
        return FileReport(key, path, False, "top level is not an object")
    try:
        doc = STATE_DOCUMENTS[key].model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        return FileReport(key, path, False, f"field {loc}: {err['msg']}")
    summary = _summary(doc.to_document())
    return FileReport(key, path, True, summary)


def _summary(doc: dict) -> str:
    parts = [f"updated_at={doc.get('updated_at')}"]
    for name in ("positions", "entries"):
        if isinstance(doc.get(name), list):
            parts.append(f"{name}={len(doc[name])}")
    return " ".join(parts)


def validate_dir(state_dir: Path) -> list[FileReport]:
    return [validate_file(key, state_dir / f"{key}.json") for key in STATE_DOCUMENTS]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="validate every state file against its schema")
    p.add_argument("state_dir", nargs="?", type=Path, help="default: the configured state directory")
    p.add_argument("--require-all", action="store_true", help="a missing file is a violation")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    state_dir = args.state_dir
    if state_dir is None:
        try:
            state_dir = load_settings().state_path
        except ConfigError as exc:
            print(exc)
            return 2
    reports = validate_dir(state_dir)
    bad = [r for r in reports if not r.ok and (r.detail != "missing" or args.require_all)]
    for r in reports:
        mark = "ok  " if r.ok else ("MISS" if r.detail == "missing" else "FAIL")
        print(f"{mark} {r.path.name}: {r.detail}")
    present = sum(1 for r in reports if r.detail != "missing")
    if bad:
        print(f"{len(bad)} violation(s) in {state_dir}")
        return 1
    print(f"{present}/{len(reports)} state files present and valid in {state_dir}")
    return 0
