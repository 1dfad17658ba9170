"""Who may say what: every message type names its producers, and the hub holds senders to it.

Seeds 000 and 001 name one canonical producer per document (the executor for positions,
ledger and KPIs, sync for NAV); without a check that held by convention only, and a client
outside the group could blank positions_state.json or invent a "silent" actor. So at ingest:

- `src` must be one of the message type's `PRODUCERS` (docs/bus_protocol.md has the table);
- a heartbeat speaks for its sender only: `actor` must equal `src`;
- over TCP with CURVE, the client's key (its ZAP User-Id, the key file's name) must be
  allowed to speak as `src`: a key is allowed its own name, or the names listed in its key
  file's `producers` metadata (`v7 keys new NAME --producers executor,router`).

A refusal is a NACK `unauthorized` naming the field; nothing of it is applied.
"""

from __future__ import annotations

from collections.abc import Mapping

from bus.codec import BusError
from bus.messages import Heartbeat, Message
from bus.protocol import ErrorCode


class Authority:
    def __init__(self, key_producers: Mapping[str, frozenset[str]] | None = None) -> None:
        self._keys = dict(key_producers or {})

    def check(self, src: str, msg: Message, key: str | None = None) -> BusError | None:
        if src not in msg.PRODUCERS:
            return BusError(ErrorCode.UNAUTHORIZED,
                            f"{src[:64]!r} may not send {msg.TYPE} (producers: {', '.join(sorted(msg.PRODUCERS))})",
                            "src")
        if key is not None and src not in self._keys.get(key, frozenset({key})):
            return BusError(ErrorCode.UNAUTHORIZED, f"the CURVE key {key[:64]!r} may not speak as {src[:64]!r}", "src")
        if isinstance(msg, Heartbeat) and msg.actor != src:
            return BusError(ErrorCode.UNAUTHORIZED, f"{src[:64]!r} sent a heartbeat for {msg.actor[:64]!r}", "actor")
        return None
