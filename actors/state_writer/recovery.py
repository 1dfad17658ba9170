"""Start-up recovery: newest good snapshot + journal tail -> the state as of the last record.

Replay feeds hooks (the positions store) every record after their own `applied_seq()`, so a
hook that crashed mid-batch catches up from the journal. Documents come back from the
journal as raw wire dicts and are normalised through their models once at the end.

A journal or snapshot written by a protocol-version-1 hub is upgraded record by record
(`bus.messages.legacy_v1`). A record the current models refuse (version 1 accepted things
version 2 does not, such as a bool for an int) is applied to the writer's own state as it
was committed, skipped for the hooks, logged and counted in `Recovered.refused`.

A hook that refuses the replay (disk full, database gone) does not stop recovery: the
writer's own state is rebuilt all the same, `Recovered.hook_error` says why the hooks are
behind, and the writer serves without ACKing until `catch_up_hooks` succeeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgpack

from actors.state_writer.hooks import CommitHook, Committed
from actors.state_writer.journal import Journal, JournalCorrupt
from actors.state_writer.snapshot import load_latest
from actors.state_writer.state import WriterState
from bus import codec
from bus.codec import BusError
from bus.messages import REGISTRY, STATE_DOCUMENTS
from bus.messages.legacy_v1 import V1Upgrader
from bus.protocol import PROTOCOL_VERSION

log = logging.getLogger(__name__)

_HOOK_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Recovered:
    state: WriterState
    snapshot_seq: int
    replayed: int
    hook_error: Exception | None = None  # the hooks are behind the journal (retry with catch_up_hooks)
    refused: int = 0  # records the current models refuse (not given to the hooks)


def apply_hooks(hooks: list[CommitHook], batch: list[Committed], *, replay: bool = False) -> None:
    for hook in hooks:
        todo = [c for c in batch if c.seq > hook.applied_seq()] if replay else batch
        if todo:
            hook.apply(todo)


def _committed(seq: int, env: dict[str, Any], msg: dict[str, Any]) -> Committed | None:
    """A journal record as the hooks take it; None (logged) if the current models refuse it."""
    try:
        return Committed(seq, env["src"], env["inc"], env["sseq"], codec.decode_message(msg))
    except BusError as err:
        log.error("journal record seq %d (%s) does not validate as protocol %d: %s; not given to the hooks",
                  seq, str(msg.get("type"))[:40], PROTOCOL_VERSION, err)
        return None


def recover(journal: Journal, hooks: list[CommitHook], dedup_streams_max: int,
            default_scope: tuple[str, str, str] = ("SIM", "paper", "testnet")) -> Recovered:
    """`default_scope` is the active scope a version-1 journal started with (the writer's configured
    mode and account, and its venue network: the network a scope-less LIVE document was for)."""
    upgrader = V1Upgrader(*default_scope)
    snap = load_latest(journal.directory)
    state = (WriterState.load(snap, dedup_streams_max, upgrader) if snap is not None
             else WriterState(dedup_streams_max))
    snapshot_seq = state.seq
    hook_from = min((h.applied_seq() for h in hooks), default=state.seq)
    start_after = min(state.seq, hook_from)
    replayed = 0
    hook_batch: list[Committed] = []
    hook_error: Exception | None = None
    refused = 0
    expected = start_after + 1
    for record in journal.replay(after_seq=start_after):
        if record.seq != expected:
            # Records are written gap-free; a hole means segments were lost or compacted too early.
            who = f"a commit hook needs records after {hook_from}" if hook_from < snapshot_seq else "replay"
            raise JournalCorrupt(
                f"journal jumps from seq {expected - 1} to {record.seq} ({who}; snapshot at {snapshot_seq}): "
                "records are missing; restore the journal directory or move it aside")
        expected += 1
        env = msgpack.unpackb(record.payload, raw=False, strict_map_key=False)
        msg = upgrader.message(env["msg"])
        if record.seq > state.seq:
            cls = REGISTRY[msg["type"]][msg["v"]]
            state.apply(record.seq, env["src"], env["inc"], env["sseq"], msg, cls.STATE_KEY)
            replayed += 1
        if hooks and hook_error is None and record.seq > hook_from:
            committed = _committed(record.seq, env, msg)
            if committed is None:
                refused += 1
                continue
            hook_batch.append(committed)
            if len(hook_batch) >= _HOOK_BATCH:
                hook_error = _apply_replay(hooks, hook_batch)
                hook_batch = []
    if hook_batch and hook_error is None:
        hook_error = _apply_replay(hooks, hook_batch)
    state.seq = max(state.seq, journal.last_seq)
    journal.last_seq = state.seq
    for key, doc in state.documents().items():
        try:
            state.replace_document(key, STATE_DOCUMENTS[key].model_validate(doc).to_document())
        except ValueError as exc:  # pydantic's ValidationError: an older schema must not stop recovery
            log.error("recovered %s does not validate (%s); keeping it as journaled", key, exc)
    return Recovered(state, snapshot_seq, replayed, hook_error, refused)


def _apply_replay(hooks: list[CommitHook], batch: list[Committed]) -> Exception | None:
    try:
        apply_hooks(hooks, batch, replay=True)
    except Exception as exc:  # the hook's storage refused; the writer's own state still recovers
        log.error("commit hook refused the replay at seq %d..%d: %r", batch[0].seq, batch[-1].seq, exc)
        return exc
    return None


def catch_up_hooks(journal: Journal, hooks: list[CommitHook], upto_seq: int,
                   default_scope: tuple[str, str, str] = ("SIM", "paper", "testnet")) -> int:
    """Feed every hook the journaled records after its `applied_seq()` up to `upto_seq` (the
    writer's seq), read only; returns how many records were read. Raises what a hook raises."""
    if not hooks:
        return 0
    upgrader = V1Upgrader(*default_scope)
    start_after = min(h.applied_seq() for h in hooks)
    expected = start_after + 1
    batch: list[Committed] = []
    for record in journal.records(after_seq=start_after):
        if record.seq > upto_seq:
            break
        if record.seq != expected:
            raise JournalCorrupt(f"journal jumps from seq {expected - 1} to {record.seq} during the hook catch-up")
        expected += 1
        env = msgpack.unpackb(record.payload, raw=False, strict_map_key=False)
        committed = _committed(record.seq, env, upgrader.message(env["msg"]))
        if committed is None:
            continue
        batch.append(committed)
        if len(batch) >= _HOOK_BATCH:
            apply_hooks(hooks, batch, replay=True)
            batch = []
    if batch:
        apply_hooks(hooks, batch, replay=True)
    if expected <= upto_seq:
        raise JournalCorrupt(f"journal ends at seq {expected - 1}, the writer is at {upto_seq}")
    return upto_seq - start_after
