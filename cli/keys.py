"""`v7 keys new NAME [--dir DIR] [--producers a,b]`: a CURVE key pair for the hub or a client.

Writes DIR/NAME.key (public, safe to copy) and DIR/NAME.key_secret (mode 0600). To let a
client in, copy its NAME.key into the hub's `bus.curve_allowed_clients_dir`. The hub lets
that key speak only as NAME, or as the programs `--producers` lists (a host running several
actors: `--producers executor,router,exit_scanner`); the list is in the key file itself.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import zmq.auth


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="CURVE keys for TCP endpoints across hosts")
    keys_sub = p.add_subparsers(dest="keys_command", required=True)
    new = keys_sub.add_parser("new", help="generate NAME.key and NAME.key_secret")
    new.add_argument("name")
    new.add_argument("--dir", type=Path, default=Path("keys"))
    new.add_argument("--producers", default="",
                     help="comma-separated program names this key may speak as (default: NAME)")
    new.set_defaults(func=cmd_new)


def cmd_new(args: argparse.Namespace) -> int:
    if not args.name.replace("-", "").replace("_", "").isalnum():
        print(f"v7 keys: name {args.name!r} must be letters, digits, '-' or '_'")
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    public_path = args.dir / f"{args.name}.key"
    if public_path.exists():
        print(f"v7 keys: {public_path} exists; refusing to overwrite a key")
        return 1
    producers = [p for p in args.producers.replace(",", " ").split() if p]
    metadata = {"producers": " ".join(producers)} if producers else None
    public, secret = zmq.auth.create_certificates(args.dir, args.name, metadata=metadata)
    if producers:
        # pyzmq writes metadata into the secret file only; the hub reads it from the public file.
        text = Path(public).read_text()
        Path(public).write_text(text.replace("metadata\n", f'metadata\n    producers = "{" ".join(producers)}"\n', 1))
    os.chmod(secret, 0o600)
    print(f"public: {public}\nsecret: {secret}")
    return 0
