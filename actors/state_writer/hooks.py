"""Extension point: components that apply committed messages inside the commit path.

A hook sees every committed batch after the journal fsync and before the ACK, so whatever it
persists (the positions store) is durable before any sender hears "ACK". If `apply` raises
(disk full, database gone), the writer stops ACKing and retries: `reopen()`, then the journal
replays to the hook every record after `applied_seq()`, until that succeeds; start-up does the
same catch-up. Hooks must therefore be idempotent by seq.

`open()` runs once under the state-directory lock, before recovery (so a second writer that
is refused the lock never touches the hook's storage). `applied_seq()` is also how far back
the hook needs the journal: snapshots never compact records after it away.

Views: a hook serves its `keys` on the snapshot service (`view(key)`) from memory, and the
writer publishes each one whenever it changes. After every committed batch (once its messages
are published) and after every `tick()`, the writer asks `changed_views()` and publishes each
returned value as a `$view:<key>` frame at the last committed seq (docs/bus_protocol.md,
section 4). All of this runs on the writer's one thread, so no lock is needed, and none of it
may block on storage per request: `view` is called per snapshot request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol

from bus.codec import BusError
from bus.messages import Message


class Committed(NamedTuple):
    """One committed message. A NamedTuple: built once per message on the hot path, and cheap."""

    seq: int
    src: str
    inc: int
    sseq: int
    msg: Message


class Admission(Protocol):
    """One ingest batch's check of new messages against a hook's committed state.

    `check` sees each valid new message of the batch in order and returns the refusal (a
    NACK) or None; what it accepted counts for the next message of the same batch. Pure
    memory, no I/O: it runs on the ingest path before the journal.
    """

    def check(self, msg: Message) -> BusError | None: ...


class CommitHook(Protocol):
    #: snapshot keys this hook serves (e.g. "open_positions")
    keys: tuple[str, ...]

    def open(self) -> None: ...

    def admission(self) -> Admission | None:
        """A fresh check for one ingest batch, or None when the hook refuses nothing."""

    def applied_seq(self) -> int: ...

    def apply(self, batch: list[Committed]) -> None: ...

    def view(self, key: str) -> Any:
        """What a snapshot request for `key` returns now (JSON-ready). From memory: no storage reads."""

    def changed_views(self) -> dict[str, Any]:
        """The published views whose value changed since the last call, each exactly as `view(key)`
        returns it now; {} when nothing changed (cheap: render only what the last batches touched).
        The first call after start-up sets the baseline (its result is not published). A hook whose
        state is in doubt (a failed `apply`, before `reopen`) returns {}."""

    def tick(self) -> None:
        """Time-driven upkeep, on the writer's tick (every `writer.tick_ms`), never while the hooks
        are failing: a change here (e.g. the P&L day rolling over at midnight UTC) is published by
        the `changed_views()` that follows. Storage trouble is logged and retried, never raised."""

    def resume(self, pending_intents: Iterable[Mapping[str, Any]]) -> None:
        """After start-up recovery and after every catch-up: the intents still in flight by the
        writer's own state (snapshotted, so it survives kill -9). A hook that has already applied
        an intent's record before a crash never sees it replayed; this is how it learns of it."""

    def reopen(self) -> None:
        """Drop in-memory state and load it again from storage (after a failed `apply`)."""

    def close(self) -> None: ...
