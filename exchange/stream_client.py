"""A consumer of the exchange gateway's streams: join, apply in order, resync on a gap or silence.

The Clone discipline, as for the hub's updates (exchange/stream_server.py has the frames):

1. SUB to the streams wanted and to the `$venue` heartbeat;
2. wait for the first frame (the gateway heartbeats at once on a subscription), buffering;
3. ask for a snapshot over the adapter RPC (`stream_snapshot`): the state and the sequence of
   each stream it is valid at; hand the owner a `Resynced` with it;
4. apply only events newer than the snapshot, each stream's sequence gap-free. A gap, a
   heartbeat announcing an event not seen, a new epoch (the gateway restarted) or silence
   for `silent_after_s` (a fresh socket, Pirate style) means: snapshot again.

The owner drives it from its event loop: `socket` is what to poll, `drain()` takes what has
arrived (events and `Resynced` markers, in order), `check()` runs the silence timer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import zmq
from pydantic import ValidationError

from bus import codec
from bus.codec import BusError
from bus.protocol import unpack_seq
from bus.sockets import connect
from config.settings import Settings
from exchange.client import RpcExchange
from exchange.errors import ExchangeError
from exchange.stream_server import VENUE_TOPIC
from exchange.streams import (
    ACCOUNT,
    ACCOUNT_EVENT,
    MARKET,
    MARKET_EVENT,
    BalanceChanged,
    BarClosed,
    BookTicked,
    ExchangeSnapshot,
    OrderChanged,
    PositionChanged,
    TradeExecuted,
)

log = logging.getLogger(__name__)

_JOIN_BUFFER_MAX = 100_000
_DECODE = {MARKET.encode(): (MARKET, MARKET_EVENT), ACCOUNT.encode(): (ACCOUNT, ACCOUNT_EVENT)}


@dataclass(frozen=True, slots=True)
class Resynced:
    """Replace what you hold with this snapshot (first join, a gap, silence, a gateway restart)."""

    snapshot: ExchangeSnapshot
    reason: str


StreamItem = BookTicked | BarClosed | OrderChanged | TradeExecuted | PositionChanged | BalanceChanged | Resynced


@dataclass(slots=True)
class StreamStats:
    events: int = 0
    resyncs: int = 0
    gaps: int = 0
    reconnects: int = 0
    undecodable: int = 0
    snapshot_failures: int = 0
    last_reason: str = ""
    by_reason: dict[str, int] = field(default_factory=dict)


class ExchangeStream:
    def __init__(self, settings: Settings, rpc: RpcExchange, *, streams: Iterable[str] = (MARKET, ACCOUNT),
                 context: zmq.Context | None = None, silent_after_s: float | None = None) -> None:
        self._settings = settings
        self._rpc = rpc
        self._ctx = context or zmq.Context.instance()
        self.streams = tuple(streams)
        self.endpoint = settings.exchange_stream_endpoint
        self.silent_after_s = silent_after_s or 5 * settings.bus.heartbeat_s
        self.seqs: dict[str, int] = dict.fromkeys(self.streams, 0)
        self.epoch = ""
        self.synced = False
        self.last_seen = time.monotonic()
        self.stats = StreamStats()
        self._sock: zmq.Socket | None = None
        self._joined = False
        self._buffer: list[list[bytes]] = []
        self._open()

    # --- the socket ------------------------------------------------------------------------------

    @property
    def socket(self) -> zmq.Socket:
        assert self._sock is not None
        return self._sock

    def _open(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        self._sock = connect(self._ctx, zmq.SUB, self.endpoint, self._settings)
        for name in (*self.streams, VENUE_TOPIC.decode()):
            self._sock.setsockopt(zmq.SUBSCRIBE, name.encode())
        self.synced = False
        self._joined = False
        self._buffer = []
        self.last_seen = time.monotonic()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    @property
    def alive(self) -> bool:
        return self.synced and time.monotonic() - self.last_seen < self.silent_after_s

    # --- driving it ------------------------------------------------------------------------------

    def drain(self) -> list[StreamItem]:
        """Everything that has arrived (non-blocking), in order; may include `Resynced`."""
        out: list[StreamItem] = []
        sock = self.socket
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.last_seen = time.monotonic()
            if not self.synced:
                self._joined = True
                if len(self._buffer) < _JOIN_BUFFER_MAX:
                    self._buffer.append(frames)
                continue
            if not self._on_frames(frames, out):
                self._resync("gap", out)
        if self._joined and not self.synced:
            self._resync("join", out)
        return out

    def check(self) -> list[StreamItem]:
        """The silence timer: call every heartbeat or so. A silent gateway gets a fresh socket."""
        out: list[StreamItem] = []
        if time.monotonic() - self.last_seen > self.silent_after_s:
            log.warning("exchange streams silent for %.1fs; reconnecting", time.monotonic() - self.last_seen)
            self.stats.reconnects += 1
            self._open()
        elif self._joined and not self.synced:
            self._resync("join", out)  # the snapshot failed before: try again
        return out

    # --- applying --------------------------------------------------------------------------------

    def _resync(self, reason: str, out: list[StreamItem]) -> None:
        try:
            snap = self._rpc.stream_snapshot()
        except ExchangeError as exc:
            self.stats.snapshot_failures += 1
            log.info("exchange snapshot not available (%s); retrying", exc)
            self.synced = False
            return
        self.stats.resyncs += 1
        self.stats.last_reason = reason
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        self.epoch = snap.epoch
        self.seqs = {MARKET: snap.market_seq, ACCOUNT: snap.account_seq}
        self.seqs = {s: self.seqs[s] for s in self.streams}
        self.synced = True
        out.append(Resynced(snap.state, reason))
        buffered, self._buffer = self._buffer, []
        for frames in buffered:
            if not self._on_frames(frames, out):
                self.stats.gaps += 1
                self._resync("gap", out)
                return

    def _on_frames(self, frames: list[bytes], out: list[StreamItem]) -> bool:
        """Apply one frame set; False when out of step with the gateway."""
        if len(frames) != 3 or len(frames[1]) != 8:
            return True
        topic, seq_frame, body = frames
        if topic == VENUE_TOPIC:
            return self._on_heartbeat(body)
        decoding = _DECODE.get(topic)
        if decoding is None:
            return True
        stream, adapter = decoding
        seq = unpack_seq(seq_frame)
        have = self.seqs.get(stream)
        if have is None or seq <= have:
            return True  # not ours, or already in the snapshot
        if seq != have + 1:
            log.info("exchange %s stream gap: have %d, got %d", stream, have, seq)
            self.stats.gaps += 1
            return False
        self.seqs[stream] = seq
        try:
            out.append(adapter.validate_python(codec.unpack(body)))
        except (BusError, ValidationError) as exc:
            self.stats.undecodable += 1
            log.warning("undecodable %s event seq=%d: %s", stream, seq, exc)
            return True
        self.stats.events += 1
        return True

    def _on_heartbeat(self, body: bytes) -> bool:
        try:
            beat = codec.unpack(body)
            epoch = str(beat["epoch"])
            latest = {MARKET: int(beat["market_seq"]), ACCOUNT: int(beat["account_seq"])}
        except (BusError, KeyError, TypeError, ValueError):
            return True
        if self.epoch and epoch != self.epoch:
            log.info("exchange gateway restarted (epoch %s -> %s); resyncing", self.epoch, epoch)
            return False
        # Every event before a heartbeat was sent before it: one announced but not seen is lost.
        return all(latest[s] <= have for s, have in self.seqs.items())
