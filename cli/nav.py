"""`v7 nav reset-peak`: the operator moves peak NAV (after a deposit or withdrawal), audited.

The command is a durable message through the hub (journaled with its reason and operator);
sync applies it at its next NAV reading and records it in nav_state as `peak_reset`.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from bus.messages import CLI, ResetNavPeak
from bus.sender import Sender
from config.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("nav", help="operator actions on NAV tracking")
    nav_sub = p.add_subparsers(dest="nav_command", required=True)
    reset = nav_sub.add_parser(
        "reset-peak", help="set peak NAV (default: the next NAV reading), e.g. after a deposit")
    reset.add_argument("--reason", required=True, help="why (kept in the journal and in nav_state)")
    reset.add_argument("--peak", type=float, help="the new peak; default: the next NAV reading")
    reset.add_argument("--operator", default=None, help="who (default: the login name)")
    reset.set_defaults(func=cmd_reset_peak)


def cmd_reset_peak(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        msg = ResetNavPeak(peak_nav=args.peak, reason=args.reason, operator=args.operator or getpass.getuser())
    except ValueError as exc:
        print(f"v7 nav reset-peak: {exc}", file=sys.stderr)
        return 2
    sender = Sender(settings, CLI)
    try:
        seq = sender.send_and_wait(msg, timeout=15)
    except TimeoutError:
        print("v7 nav reset-peak: no ACK from the hub in 15 s; the reset is not confirmed "
              "(check nav_state.peak_reset once the hub is back)", file=sys.stderr)
        return 1
    finally:
        sender.close(flush_timeout=0)
    target = f"{args.peak:.2f}" if args.peak is not None else "the next NAV reading"
    print(f"committed as seq {seq}: sync sets peak NAV to {target} at its next sample")
    return 0
