"""`v7 positions`, `v7 pnl`, `v7 scope`: the positions store, as the state writer serves it.

Reads go to the state writer's snapshot service; when it does not answer, `positions` and
`pnl` read the database read-only instead (and say so). `v7 scope MODE ACCOUNT` switches the
active scope by sending a message to the state writer; nothing is closed by a switch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from actors.state_writer.lock import LOCK_NAME
from bus.codec import BusError
from bus.messages import CLI, ActiveScope, ClosedTrade, PnlToday, StoredPosition, SwitchScope
from bus.sender import Sender
from bus.subscriber import SnapshotError, request_snapshot
from config.settings import Settings, load_settings

SOURCE_NOTE = "(state writer not answering: read from the database)"


def fetch_views(settings: Settings, keys: list[str], timeout_s: float = 3.0) -> dict[str, Any] | None:
    """The store's views from the state writer, or None if it does not answer."""
    if _writer_not_running(settings):
        return None
    try:
        return request_snapshot(settings, keys=keys, timeout_s=timeout_s).state
    except SnapshotError:
        return None


def _writer_not_running(settings: Settings) -> bool:
    """True when this host's state writer is known to be stopped, so that a reader does not wait
    `timeout_s` for an answer that cannot come: with ipc endpoints the writer runs here, and its
    directory lock names its pid while it runs (emptied on a clean stop). Anything unclear
    (a TCP hub elsewhere, an unreadable lock) is False: then the snapshot request decides."""
    if not settings.snapshot_endpoint.startswith("ipc://"):
        return False
    try:
        holder = (settings.state_path / LOCK_NAME).read_text().strip()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not holder:
        return True
    try:
        os.kill(int(holder), 0)
    except ProcessLookupError:
        return True
    except (ValueError, OSError):
        return False
    return False


def send_to_writer(settings: Settings, msg: Any, timeout_s: float = 15.0) -> int:
    """Send one durable operator command as `cli` and wait for its ACK; returns its seq."""
    sender = Sender(settings, CLI)
    try:
        return sender.send_and_wait(msg, timeout=timeout_s)
    finally:
        sender.close(flush_timeout=0.5)


def read_database(settings: Settings, read: Callable[[Any], Any]) -> Any:
    """`read(StoreReader)` against the database, read-only; None (reason on stderr) if it cannot be read."""
    # Imported here: SQLAlchemy costs every other `v7` command its start-up time.
    from sqlalchemy.exc import SQLAlchemyError

    from actors.state_writer.store.reader import StoreReader
    from actors.state_writer.store.schema import StoreError

    try:
        reader = StoreReader(settings)
        try:
            return read(reader)
        finally:
            reader.close()
    except (SQLAlchemyError, StoreError, OSError) as exc:
        print(f"cannot read the positions database: {exc}", file=sys.stderr)
        return None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("positions", help="open positions in the store (every mode and account)")
    p.add_argument("--mode", choices=("SIM", "LIVE"))
    p.add_argument("--account")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_positions)
    p = sub.add_parser("pnl", help="P&L of a UTC day per mode, account and symbol: realized net of fees + "
                                   "unrealized at the (day's last) mark")
    p.add_argument("--day", type=date.fromisoformat, help="YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--trades", action="store_true", help="also list the day's closed trades")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pnl)
    p = sub.add_parser("scope", help="show the active mode/account, or switch it (nothing is closed)")
    p.add_argument("mode", nargs="?", choices=("SIM", "LIVE"))
    p.add_argument("account", nargs="?")
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_scope)


def utc_day() -> date:
    return datetime.now(UTC).date()


def _fmt(value: float | None, spec: str = ".6g") -> str:
    return "-" if value is None else format(value, spec)


def cmd_positions(args: argparse.Namespace) -> int:
    settings = load_settings()
    views = fetch_views(settings, ["open_positions"])
    if views is not None:
        positions = [StoredPosition.model_validate(p) for p in views["open_positions"]]
    else:
        print(SOURCE_NOTE, file=sys.stderr)
        positions = read_database(settings, lambda r: r.open_positions())
        if positions is None:
            return 1
    positions = [p for p in positions if (args.mode in (None, p.mode)) and (args.account in (None, p.account))]
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in positions], indent=2))
        return 0
    if not positions:
        print("no open positions")
        return 0
    print(f"{'MODE':<5} {'ACCOUNT':<12} {'SYMBOL':<10} {'SIDE':<5} {'QTY':>12} {'ENTRY':>12} {'MARK':>12} "
          f"{'UPNL':>12} {'TP':>10} {'SL':>10}  POSITION_ID")
    for p in positions:
        print(f"{p.mode:<5} {p.account:<12} {p.symbol:<10} {p.side:<5} {_fmt(p.qty):>12} {_fmt(p.entry_price):>12} "
              f"{_fmt(p.mark_price):>12} {p.unrealized_pnl:>12.2f} {_fmt(p.tp):>10} {_fmt(p.sl):>10}  {p.position_id}")
    return 0


def cmd_pnl(args: argparse.Namespace) -> int:
    settings = load_settings()
    day = args.day or utc_day()
    pnl: PnlToday | None = None
    trades: list[ClosedTrade] = []
    if day == utc_day():
        views = fetch_views(settings, ["pnl_today", "trades_today"] if args.trades else ["pnl_today"])
        if views is not None and views.get("pnl_today") is not None and views["pnl_today"]["day"] == day.isoformat():
            pnl = PnlToday.model_validate(views["pnl_today"])
            trades = [ClosedTrade.model_validate(t) for t in views.get("trades_today") or []]
    if pnl is None:
        if day == utc_day():
            print(SOURCE_NOTE, file=sys.stderr)
        got = read_database(settings, lambda r: (r.pnl(day, today=utc_day()), r.trades(day) if args.trades else []))
        if got is None:
            return 1
        pnl, trades = got
    if args.json:
        out: dict[str, Any] = pnl.model_dump(mode="json")
        if args.trades:
            out["trades"] = [t.model_dump(mode="json") for t in trades]
        print(json.dumps(out, indent=2))
        return 0
    past = day < utc_day()
    print(f"P&L for {pnl.day} (UTC): gross = realized before fees, net = gross - fees; unrealized = open positions "
          f"at {'the last mark of that day' if past else 'their mark'}")
    if not pnl.scopes:
        print("no trades and no open positions")
    else:
        print(f"{'MODE':<5} {'ACCOUNT':<12} {'SYMBOL':<10} {'GROSS':>12} {'FEES':>10} {'NET':>12} {'UNREALIZED':>12} "
              f"{'TOTAL':>12} {'CLOSED':>7} {'OPEN':>5}")
        for s in pnl.scopes:
            print(f"{s.mode:<5} {s.account:<12} {'(all)':<10} {s.realized_gross:>12.2f} {s.fees:>10.2f} "
                  f"{s.realized_net:>12.2f} {s.unrealized:>12.2f} {s.total:>12.2f} {s.closed_trades:>7} "
                  f"{s.open_positions:>5}")
            for symbol, r in s.symbols.items():
                print(f"{'':<5} {'':<12} {symbol:<10} {r.realized_gross:>12.2f} {r.fees:>10.2f} "
                      f"{r.realized_net:>12.2f} {r.unrealized:>12.2f} {r.total:>12.2f} {r.closed_trades:>7}")
    for t in trades:
        print(f"  {t.exit_time:%H:%M:%S} {t.mode}/{t.account} {t.symbol} {t.side} qty={t.qty:g} "
              f"entry={t.entry_price:g} exit={t.exit_price:g} net={t.realized_net:.2f} "
              f"mae={t.mae:.2f} mfe={t.mfe:.2f} ({t.close_reason})")
    return 0


def cmd_scope(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.mode is None:
        views = fetch_views(settings, ["active_scope", "open_positions"])
        if views is None:
            print("state writer not answering", file=sys.stderr)
            return 1
        scope = ActiveScope.model_validate(views["active_scope"])
        print(f"active scope: {scope.mode}/{scope.account} (since seq {scope.since_seq})")
        counts: dict[str, int] = {}
        for p in views["open_positions"]:
            name = f"{p['mode']}/{p['account']}"
            counts[name] = counts.get(name, 0) + 1
        for name, n in sorted(counts.items()):
            print(f"  {name}: {n} open position(s)")
        return 0
    if not args.account:
        print("v7 scope MODE ACCOUNT: the account is required", file=sys.stderr)
        return 2
    try:
        msg = SwitchScope(mode=args.mode, account=args.account, requested_by="cli", reason=args.reason)
        seq = send_to_writer(settings, msg)
    except (TimeoutError, ValueError, BusError) as exc:
        print(f"scope not switched: {exc}", file=sys.stderr)
        return 1
    print(f"active scope is now {args.mode}/{args.account} (seq {seq}); other scopes' positions stay open")
    return 0
