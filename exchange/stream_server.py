"""The exchange gateway's side of the streams: publish an adapter's events, gap-free, with heartbeats.

Wire format (one XPUB, every frame set is three frames, like the hub's updates):

    [b"market"  | b"account", seq (u64 big-endian), msgpack(event)]   one event; seq counts per stream
    [b"$venue",               0,                     msgpack({epoch, market_seq, account_seq, ts})]

The heartbeat goes out every `heartbeat_s` and whenever a subscription arrives, so a joiner
knows its subscription is live before it asks for a snapshot (`stream_snapshot` over the
adapter RPC, answered by `snapshot()` here: the state and the sequences it is valid at).
`epoch` changes when the gateway restarts (sequences start again from 1).

Events are pushed by the adapter from whichever thread drives it (the clock, the RPC server);
the caller holds the adapter's lock, and this module's own lock keeps the socket to one
thread at a time.
"""

from __future__ import annotations

import secrets
import threading
import time

import zmq

from bus import codec
from bus.protocol import pack_seq
from exchange.adapter import ExchangeAdapter
from exchange.streams import (
    ACCOUNT,
    ACCOUNT_EVENT,
    MARKET,
    MARKET_EVENT,
    BalanceChanged,
    BarClosed,
    BookTicked,
    OrderChanged,
    PositionChanged,
    StreamSnapshot,
    TradeExecuted,
)

VENUE_TOPIC = b"$venue"
_TOPICS = {MARKET: MARKET.encode(), ACCOUNT: ACCOUNT.encode()}


class StreamServer:
    def __init__(self, sock: zmq.Socket) -> None:
        self._sock = sock  # an XPUB, bound by the caller (a bind error stops start-up)
        self._lock = threading.Lock()
        self.epoch = secrets.token_hex(6)
        self.seqs = {MARKET: 0, ACCOUNT: 0}
        self.published = {MARKET: 0, ACCOUNT: 0}

    # --- StreamSink: what the adapter pushes -----------------------------------------------------

    def market(self, event: BookTicked | BarClosed) -> None:
        self._publish(MARKET, MARKET_EVENT.dump_python(event, mode="json"))

    def account(self, event: OrderChanged | TradeExecuted | PositionChanged | BalanceChanged) -> None:
        self._publish(ACCOUNT, ACCOUNT_EVENT.dump_python(event, mode="json"))

    def _publish(self, stream: str, body: dict) -> None:
        frame = codec.pack(body)
        with self._lock:
            seq = self.seqs[stream] + 1
            self.seqs[stream] = seq
            self._sock.send_multipart([_TOPICS[stream], pack_seq(seq), frame])
            self.published[stream] += 1

    # --- heartbeats, joins, snapshots ------------------------------------------------------------

    def new_epoch(self) -> None:
        """Start the streams again (a venue stream reconnected: what it said in between was
        recovered over REST). Every consumer sees the new epoch and resyncs by snapshot."""
        with self._lock:
            self.epoch = secrets.token_hex(6)
            self.seqs = {MARKET: 0, ACCOUNT: 0}
        self.heartbeat()

    def heartbeat(self) -> None:
        with self._lock:
            body = codec.pack({"epoch": self.epoch, "market_seq": self.seqs[MARKET],
                               "account_seq": self.seqs[ACCOUNT], "ts": time.time()})
            self._sock.send_multipart([VENUE_TOPIC, pack_seq(0), body])

    def serve_subscriptions(self) -> None:
        """Read subscription frames; a new subscriber gets a heartbeat at once (it joins on it)."""
        joined = False
        with self._lock:
            while True:
                try:
                    frame = self._sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                joined = joined or frame[:1] == b"\x01"
        if joined:
            self.heartbeat()

    def snapshot(self, adapter: ExchangeAdapter) -> StreamSnapshot:
        """The adapter's state with the sequences it is valid at. The caller holds the adapter's
        lock, so no event is pushed between reading the state and reading the sequences."""
        state = adapter.snapshot()
        with self._lock:
            return StreamSnapshot(epoch=self.epoch, market_seq=self.seqs[MARKET], account_seq=self.seqs[ACCOUNT],
                                  state=state)
