"""`v7 reconcile list` / `v7 reconcile resolve SYMBOL --action ...`: store/exchange mismatches.

A mismatch found by reconciliation stays open (and, under the default `warn` policy, blocks
new entries on its symbol) until store and exchange agree again or an operator resolves it:

  adopt_exchange   make the store say what the exchange reported (open, resize or close)
  keep_store       the store is right (e.g. the exchange answer was wrong); nothing changes

The decision is a message to the state writer, recorded in the store's audit trail with
the operator's name and note.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from bus.codec import BusError
from bus.messages import ReconciliationView, ResolveMismatch
from cli.positions import fetch_views, send_to_writer
from config.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconcile", help="list or resolve store/exchange position mismatches")
    rsub = p.add_subparsers(dest="reconcile_command", required=True, metavar="ACTION")
    lp = rsub.add_parser("list", help="open mismatches, blocked symbols and halted scopes")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_list)
    rp = rsub.add_parser("resolve", help="resolve the open mismatch of one symbol")
    rp.add_argument("symbol")
    rp.add_argument("--action", required=True, choices=("adopt_exchange", "keep_store"))
    rp.add_argument("--mode", choices=("SIM", "LIVE"), help="default: the configured mode")
    rp.add_argument("--account", help="default: the configured account")
    rp.add_argument("--operator", default=None, help="who decides (default: the login name)")
    rp.add_argument("--note", default="")
    rp.set_defaults(func=cmd_resolve)


def _view(settings: Settings) -> ReconciliationView | None:
    views = fetch_views(settings, ["reconciliation"])
    return None if views is None else ReconciliationView.model_validate(views["reconciliation"])


def cmd_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    view = _view(settings)
    if view is None:
        print("state writer not answering", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(view.model_dump(mode="json"), indent=2))
        return 0
    print(f"policy: {view.policy}")
    if not view.issues:
        print("no open mismatches")
        return 0
    for i in view.issues:
        print(f"{i.mode}/{i.account} {i.symbol}: {i.kind} - {i.detail} (policy {i.policy}, since seq {i.opened_seq}, "
              f"last seen seq {i.last_seen_seq})")
    for h in view.halted:
        print(f"HALTED: {h.mode}/{h.account} takes no new entries until every mismatch is resolved")
    print("resolve with: v7 reconcile resolve SYMBOL --action adopt_exchange|keep_store [--mode M --account A]")
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    settings = load_settings()
    mode = args.mode or settings.mode
    account = args.account or settings.account
    symbol = args.symbol.upper()
    view = _view(settings)
    if view is None:
        print("state writer not answering; nothing sent", file=sys.stderr)
        return 1
    issue = next((i for i in view.issues if (i.mode, i.account, i.symbol) == (mode, account, symbol)), None)
    if issue is None:
        print(f"no open mismatch for {mode}/{account} {symbol}; nothing sent", file=sys.stderr)
        return 1
    if args.action == "adopt_exchange" and issue.kind == "fill_anomaly":
        print(f"{symbol}: this mismatch comes from a fill, not from an exchange report, so there is nothing to "
              "adopt yet; wait for the next reconciliation or use --action keep_store", file=sys.stderr)
        return 1
    try:
        msg = ResolveMismatch(mode=mode, account=account, symbol=symbol, action=args.action,
                                       operator=args.operator or getpass.getuser(), note=args.note)
        seq = send_to_writer(settings, msg)
    except (TimeoutError, ValueError, BusError) as exc:
        print(f"not resolved: {exc}", file=sys.stderr)
        return 1
    print(f"{mode}/{account} {symbol}: {issue.kind} resolved with {args.action} (seq {seq})")
    return 0
