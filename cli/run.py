"""`v7 run NAME`: run one actor in the foreground (supervisord's `command`)."""

from __future__ import annotations

import argparse
import importlib
import sys

from config.settings import ACTORS, ConfigError, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one actor process in the foreground")
    p.add_argument("actor", choices=ACTORS)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"v7 run {args.actor}: {exc}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"actors.{args.actor}.main")
    try:
        return int(module.run(settings) or 0)
    except ConfigError as exc:
        print(f"v7 run {args.actor}: {exc}", file=sys.stderr)
        return 2
