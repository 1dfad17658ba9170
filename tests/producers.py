"""A test stand-in for a whole group: sends each message as a program allowed to send it.

The hub refuses a message from any other `src` (`unauthorized`), so a test that feeds
several message types plays each one's producer: one `Sender` per program, created on first
use. `send_and_wait` waits for each ACK, so messages commit in the order given, whichever
sender carried them.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from bus.messages import Heartbeat, Message
from bus.sender import Sender
from config.settings import Settings


class Producers:
    def __init__(self, settings: Settings, prefer: str | None = None, **sender_options: Any) -> None:
        self.settings = settings
        self.prefer = prefer  # the program to play when it may send the message
        self.options = sender_options  # passed to every Sender (resend_after_s, outbox_max, ...)
        self.senders: dict[str, Sender] = {}

    def sender_for(self, msg: Message) -> Sender:
        if isinstance(msg, Heartbeat):
            src = msg.actor
        else:
            src = self.prefer if self.prefer in msg.PRODUCERS else sorted(msg.PRODUCERS)[0]
        if src not in self.senders:
            self.senders[src] = Sender(self.settings, src, **self.options)
        return self.senders[src]

    def send(self, msg: Message) -> int | None:
        return self.sender_for(msg).send(msg)

    def submit(self, msg: Message) -> Future[int]:
        return self.sender_for(msg).submit(msg)

    @property
    def outbox_depth(self) -> int:
        return sum(s.outbox_depth for s in self.senders.values())

    def send_and_wait(self, msg: Message, timeout: float = 30) -> int:
        return self.sender_for(msg).send_and_wait(msg, timeout=timeout)

    def flush(self, timeout: float) -> bool:
        return all(s.flush(timeout) for s in self.senders.values())

    def close(self, flush_timeout: float = 2.0) -> None:
        for sender in self.senders.values():
            sender.close(flush_timeout=flush_timeout)
