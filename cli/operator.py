"""`v7 halt`, `v7 resume`, `v7 flatten`: the operator's safety switches, audited through the hub.

- `halt`: no new entries in the active scope from now on (the executor opens nothing, the
  router cancels every entry still working); exits go on. Survives restarts.
- `resume`: lift the halt.
- `flatten`: halt, cancel every open order of the configured symbols on the exchange (except
  exits already working), then close every position with a reduce-only taker order
  (`submit_order`, purpose `exit_manual`, journaled like any intent and routed by the
  router), and wait until the exchange shows every symbol flat.

Every command is a durable message from `cli` naming the operator and the reason: the
journal is the audit trail.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
import uuid

from bus.messages import CLI, HaltEntries, Message, ResumeEntries, SubmitOrder
from bus.sender import Sender
from config.settings import Settings, load_settings
from domain.vocabulary import closing_side
from exchange.client import RpcExchange
from exchange.errors import ExchangeError

EXIT_ID_PREFIX = ("ex-", "fl-")  # exits already working are left alone by flatten


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_text, func in (
        ("halt", "stop new entries in the active scope (exits go on)", cmd_halt),
        ("resume", "lift a halt", cmd_resume),
        ("flatten", "halt, cancel open orders and close every position with reduce-only orders", cmd_flatten),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--reason", default=name, help="why (kept in the journal)")
        p.add_argument("--operator", default=None, help="who (default: the login name)")
        if name == "flatten":
            p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for flat")
        p.set_defaults(func=func)


def _send(settings: Settings, msg: Message, what: str) -> int | None:
    sender = Sender(settings, CLI)
    try:
        return sender.send_and_wait(msg, timeout=15)
    except TimeoutError:
        print(f"v7 {what}: no ACK from the hub in 15 s; not confirmed", file=sys.stderr)
        return None
    finally:
        sender.close(flush_timeout=0)


def _halt(settings: Settings, args: argparse.Namespace, what: str) -> int | None:
    return _send(settings, HaltEntries(mode=settings.mode, account=settings.account,  # type: ignore[arg-type]
                                       operator=args.operator or getpass.getuser(), reason=args.reason), what)


def cmd_halt(args: argparse.Namespace) -> int:
    settings = load_settings()
    seq = _halt(settings, args, "halt")
    if seq is None:
        return 1
    print(f"entries halted in {settings.mode}/{settings.account} (seq {seq}); exits go on. Lift with: v7 resume")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    settings = load_settings()
    seq = _send(settings, ResumeEntries(mode=settings.mode, account=settings.account,  # type: ignore[arg-type]
                                        operator=args.operator or getpass.getuser(), reason=args.reason), "resume")
    if seq is None:
        return 1
    print(f"entries resumed in {settings.mode}/{settings.account} (seq {seq})")
    return 0


def cmd_flatten(args: argparse.Namespace) -> int:
    settings = load_settings()
    operator = args.operator or getpass.getuser()
    if _halt(settings, args, "flatten") is None:
        return 1
    exchange = RpcExchange(settings, timeout_s=15)
    try:
        cancelled = 0
        for symbol in settings.symbols:
            for order in exchange.fetch_orders(symbol, open_only=True):
                if not order.client_order_id.startswith(EXIT_ID_PREFIX):
                    exchange.cancel_order(symbol, order.client_order_id)
                    cancelled += 1
        positions = exchange.fetch_positions()
        sender = Sender(settings, CLI)
        try:
            for p in positions:
                intent = SubmitOrder(
                    intent_id=f"fl-{uuid.uuid4().hex[:20]}", mode=settings.mode, account=settings.account,  # type: ignore[arg-type]
                    symbol=p.symbol, side=closing_side(p.side), qty=p.qty, reduce_only=True, purpose="exit_manual",
                    signal_id=None)
                sender.send_and_wait(intent, timeout=15)
                print(f"closing {p.side} {p.symbol} {p.qty:g} (intent {intent.intent_id}, operator {operator})")
        finally:
            sender.close(flush_timeout=5)
        deadline = time.monotonic() + args.timeout
        while True:
            left = exchange.fetch_positions()
            if not left:
                print(f"flat: {len(positions)} position(s) closed, {cancelled} order(s) cancelled; entries stay "
                      "halted (v7 resume)")
                return 0
            if time.monotonic() > deadline:
                names = ", ".join(f"{p.side} {p.symbol} {p.qty:g}" for p in left)
                print(f"v7 flatten: still open after {args.timeout:g} s: {names}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except (ExchangeError, TimeoutError) as exc:
        print(f"v7 flatten: {exc}; entries stay halted", file=sys.stderr)
        return 1
    finally:
        exchange.close()
