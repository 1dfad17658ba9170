"""`v7` entry point. Subcommands live in their own modules; this only dispatches."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import (
    import_legacy,
    keys,
    nav,
    operator,
    ops,
    positions,
    prometheus,
    reconcile,
    run,
    schemas,
    tail,
    validate,
)
from config.settings import ConfigError

COMMANDS = (run, validate, tail, schemas, ops, keys, prometheus, nav, operator, positions, reconcile, import_legacy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="v7", description="v7 runtime: single-writer trading state plane")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:  # a bad setting stops every command the same way, naming the key
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
