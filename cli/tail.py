"""`v7 tail [TOPIC...]`: print committed updates live, one line each, with their seq."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from bus.messages import Scope
from bus.subscriber import Subscriber, Update
from config.settings import load_settings


def format_update(update: Update) -> str:
    env = update.envelope
    # A document's scope is the same on every line of a group: a column, not part of the body.
    scope = getattr(update.msg, "scope", None)
    body = update.msg.model_dump(mode="json", exclude={"type", "v", "scope"})
    text = json.dumps(body, separators=(",", ":"), default=str)
    if len(text) > 240:
        text = text[:237] + "..."
    where = f" [{scope.label()}]" if isinstance(scope, Scope) else ""
    return f"{update.seq:>10} {update.topic:<20} {env.src}#{env.sseq}{where} {text}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tail", help="print committed updates live (one line each, with seq)")
    p.add_argument("topics", nargs="*", help="message types to show (default: all)")
    p.add_argument("--count", type=int, default=0, help="exit after this many updates")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings = load_settings()
    stop = False

    def _stop(*_a: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    sub = Subscriber(settings, keys=[], topics=args.topics or None)
    shown = 0
    was_synced = False
    try:
        while not stop:
            for update in sub.poll(0.5):
                print(format_update(update), flush=True)
                shown += 1
                if args.count and shown >= args.count:
                    return 0
            if sub.synced and not was_synced:
                print(f"# synced at seq {sub.seq}", file=sys.stderr, flush=True)
            was_synced = sub.synced
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
    return 0
