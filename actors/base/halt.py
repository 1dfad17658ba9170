"""The operator's entry halt for one scope, as every trading actor sees it (`v7 halt` / `v7 resume`).

The hub keeps the newest `halt_entries` / `resume_entries` per scope (snapshot key
`entry_halts`, journaled, so a halt survives restarts of anything); an actor takes the
snapshot's value on every resync and follows the two commands as they commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bus.messages import HaltEntries, Message, ResumeEntries

ENTRY_HALTS_KEY = "entry_halts"
TOPICS = (HaltEntries.TYPE, ResumeEntries.TYPE)


class EntryHalt:
    def __init__(self, mode: str, account: str) -> None:
        self.scope = (mode, account)
        self.halted = False
        self.detail = ""

    def absorb(self, halts: Mapping[str, Any] | None) -> None:
        """The snapshot's `entry_halts` map ("MODE/account" -> the newest command, with its seq)."""
        raw = (halts or {}).get(f"{self.scope[0]}/{self.scope[1]}")
        self.halted = bool(raw) and raw.get("type") == HaltEntries.TYPE
        self.detail = self._detail(raw.get("operator"), raw.get("reason")) if self.halted and raw else ""

    def apply(self, msg: Message) -> bool:
        """Follow a committed halt or resume; True if it was for this scope."""
        if not isinstance(msg, HaltEntries | ResumeEntries) or (msg.mode, msg.account) != self.scope:
            return False
        self.halted = isinstance(msg, HaltEntries)
        self.detail = self._detail(msg.operator, msg.reason) if self.halted else ""
        return True

    @staticmethod
    def _detail(operator: Any, reason: Any) -> str:
        return f"entries halted by {operator}: {reason} (v7 resume to lift)"[:500]
