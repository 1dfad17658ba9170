"""User-data stream listenKeys: one per account, valid `ttl` seconds, extended by keepalive."""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import error

ALPHABET = string.ascii_letters + string.digits


@dataclass
class ListenKey:
    key: str
    account_id: str
    api_key: str
    created_ms: int
    expires_at: float  # loop time
    expired: bool = False
    handle: asyncio.TimerHandle | None = field(default=None, repr=False)


class ListenKeys:
    """Expiry is a loop timer; `on_expire(key, notify)` tells the stream hub (notify: send the event)."""

    def __init__(self, ttl_s: float, on_expire: Callable[[ListenKey, bool], None]) -> None:
        self.ttl_s = ttl_s
        self.on_expire = on_expire
        self.by_key: dict[str, ListenKey] = {}

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _schedule(self, lk: ListenKey) -> None:
        if lk.handle is not None:
            lk.handle.cancel()
        loop = self._loop()
        lk.expires_at = loop.time() + self.ttl_s
        lk.handle = loop.call_at(lk.expires_at, self.expire, lk.key, True)

    def active_for(self, account_id: str) -> ListenKey | None:
        for lk in self.by_key.values():
            if lk.account_id == account_id and not lk.expired:
                return lk
        return None

    def create(self, account_id: str, api_key: str, now_ms: int) -> ListenKey:
        """POST: the account's active key (validity extended) or a new one."""
        lk = self.active_for(account_id)
        if lk is None:
            key = "".join(secrets.choice(ALPHABET) for _ in range(64))
            lk = ListenKey(key, account_id, api_key, now_ms, 0.0)
            self.by_key[key] = lk
        self._schedule(lk)
        return lk

    def keepalive(self, account_id: str) -> ListenKey:
        """PUT: extend the account's active key; -1125 if it has none."""
        lk = self.active_for(account_id)
        if lk is None:
            raise error(-1125)
        self._schedule(lk)
        return lk

    def close(self, account_id: str) -> None:
        """DELETE: invalidate the account's active key (no event is sent)."""
        lk = self.active_for(account_id)
        if lk is not None:
            self.expire(lk.key, False)

    def expire(self, key: str, notify: bool = True) -> None:
        lk = self.by_key.get(key)
        if lk is None or lk.expired:
            return
        lk.expired = True
        if lk.handle is not None:
            lk.handle.cancel()
            lk.handle = None
        self.on_expire(lk, notify)

    def expire_all(self, account_id: str | None = None, notify: bool = True) -> list[str]:
        keys = [lk.key for lk in self.by_key.values()
                if not lk.expired and (account_id is None or lk.account_id == account_id)]
        for key in keys:
            self.expire(key, notify)
        return keys

    def get(self, key: str) -> ListenKey | None:
        return self.by_key.get(key)
