"""Chaos load: several senders streaming fills, positions and telemetry until told to stop.

    python -m tests.chaos.load --senders 3 --rate 30 --out FILE --stop-file FILE   (V7_HOME set)

Sender k trades its own account `chaos<k>` (mode SIM) so its positions are known exactly:
each cycle sends an order intent and its fill (durable, pipelined), every few cycles a
positions snapshot of that account (durable), and a heartbeat every cycle (telemetry, may be
dropped while the hub is down). The senders never stop for the hub: while it is down they keep
queueing until their outbox is full.

When the stop file appears every sender flushes (the hub is expected to be up by then) and the
ACK ledger is written to --out: for each durable message its type, its key (trade id, intent
id, or the snapshot's updated_at) and the hub seq its ACK named (0: answered "duplicate", the
message was committed by an earlier attempt), or the NACK code, or "unanswered".
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bus.codec import BusError
from bus.messages import EntryVetoed, Message, OrderFilled, PositionRow, PositionsState, Scope, SubmitOrder
from bus.sender import Sender
from config.settings import load_settings
from tests.chaos.audit import message_key
from tests.chaos.procs import write_result

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
WINDOW = 256  # default: durable messages in flight per sender before it waits for answers
POSITIONS_EVERY = 5  # cycles


@dataclass
class Ledger:
    source: str
    account: str
    sent: int = 0
    telemetry_sent: int = 0
    telemetry_dropped: int = 0
    resent: int = 0
    max_outbox: int = 0  # the most messages its outbox held at once
    acked: list[tuple[str, str, int]] = field(default_factory=list)  # (type, key, seq)
    fills: list[dict[str, object]] = field(default_factory=list)  # ACKed fills, in send order
    nacked: list[tuple[str, str, str]] = field(default_factory=list)
    unanswered: list[tuple[str, str]] = field(default_factory=list)


class LoadSender(threading.Thread):
    def __init__(self, index: int, rate: float, stop: threading.Event, seed: int, window: int = WINDOW) -> None:
        super().__init__(daemon=True, name=f"chaos-load-{index}")
        self.settings = load_settings()
        self.source = f"chaos-load-{index}"  # its ledger's name; on the bus it speaks as each type's producer
        self.account = f"chaos{index}"
        self.period = 1.0 / rate
        self.window = window
        self.stop_event = stop
        self.rng = random.Random(seed)
        self.book: dict[str, tuple[float, float]] = {}  # symbol -> (signed qty, last price) as sent
        # The hub lets each type come only from its producer: intents and positions as the
        # executor, fills as the router (separate streams: a fill may commit before its intent).
        self.sender = Sender(self.settings, "executor", resend_after_s=1.0)
        self.router = Sender(self.settings, "router", resend_after_s=1.0)
        self.pending: list[tuple[Message, Future[int]]] = []
        self.inflight: deque[Future[int]] = deque()  # unanswered, oldest first
        self.ledger = Ledger(self.source, self.account)
        self.started_at = datetime.now(UTC)

    def _sender(self, msg: Message) -> Sender:
        return self.router if isinstance(msg, OrderFilled) else self.sender

    def _submit(self, msg: Message) -> None:
        sender = self._sender(msg)
        future = sender.submit(msg)
        self.pending.append((msg, future))
        self.inflight.append(future)
        self.ledger.sent += 1
        self.ledger.max_outbox = max(self.ledger.max_outbox, sender.outbox_depth)
        while not self.stop_event.is_set() and len(self.inflight) > self.window:
            while self.inflight and self.inflight[0].done():
                self.inflight.popleft()
            if len(self.inflight) > self.window:
                time.sleep(0.01)

    def _cycle(self, i: int) -> None:
        symbol = self.rng.choice(SYMBOLS)
        side = self.rng.choice(("BUY", "SELL"))
        qty = round(self.rng.uniform(0.1, 1.0), 3)
        price = round(self.rng.uniform(90.0, 110.0), 2)
        intent_id = f"{self.source}-{i}"
        self._submit(SubmitOrder(intent_id=intent_id, symbol=symbol, side=side, qty=qty, mode="SIM",
                                 account=self.account, position_id=f"{self.account}-{symbol}-{i}"))
        self._submit(OrderFilled(trade_id=f"{intent_id}-t", order_id=f"{intent_id}-o", intent_id=intent_id, mode="SIM",
                          account=self.account, symbol=symbol, side=side, qty=qty, price=price, liquidity="taker"))
        net, _ = self.book.get(symbol, (0.0, price))
        self.book[symbol] = (net + (qty if side == "BUY" else -qty), price)
        if i % POSITIONS_EVERY == 0:
            rows = [PositionRow(symbol=s, side="LONG" if n > 0 else "SHORT", qty=abs(n), entry_price=p, mark_price=p,
                                notional=abs(n) * p, unrealized_pnl=0.0)
                    for s, (n, p) in sorted(self.book.items()) if abs(n) > 1e-9]
            self._submit(PositionsState(scope=Scope(mode="SIM", network="paper", account=self.account), positions=rows))
        # Telemetry the outbox may drop when full (heartbeats speak only for the real actors).
        noise = EntryVetoed(symbol=symbol, reason="chaos_load", detail=f"{self.source} cycle {i}")
        self.ledger.telemetry_sent += 1
        self.sender.send(noise)
        self.ledger.max_outbox = max(self.ledger.max_outbox, self.sender.outbox_depth)

    def run(self) -> None:
        i = 0
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            i += 1
            self._cycle(i)
            next_at += self.period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def settle(self, timeout: float) -> Ledger:
        self.sender.flush(timeout)
        self.router.flush(timeout)
        for msg, future in self.pending:
            key = message_key(msg)
            if not future.done():
                self.ledger.unanswered.append((msg.TYPE, key))
                continue
            exc = future.exception()
            if exc is not None:
                code = exc.code.value if isinstance(exc, BusError) else repr(exc)
                self.ledger.nacked.append((msg.TYPE, key, str(code)))
                continue
            seq = future.result()
            self.ledger.acked.append((msg.TYPE, key, seq))
            if isinstance(msg, OrderFilled):
                self.ledger.fills.append({"trade_id": msg.trade_id, "symbol": msg.symbol, "side": msg.side,
                                          "qty": msg.qty, "price": msg.price, "seq": seq})
        self.ledger.telemetry_dropped = self.sender.stats.dropped_telemetry
        self.ledger.resent = self.sender.stats.resent + self.router.stats.resent
        self.sender.close(flush_timeout=1)
        self.router.close(flush_timeout=1)
        return self.ledger


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--rate", type=float, default=30.0, help="cycles a second per sender")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window", type=int, default=WINDOW,
                        help="durable messages in flight per sender (a large one fills the outbox while the hub "
                             "is down)")
    parser.add_argument("--flush-timeout", type=float, default=120.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    args = parser.parse_args()
    stop = threading.Event()
    senders = [LoadSender(k, args.rate, stop, args.seed * 1000 + k, args.window) for k in range(args.senders)]
    for s in senders:
        s.start()
    while not args.stop_file.exists():
        time.sleep(0.1)
    stop.set()
    for s in senders:
        s.join(timeout=30)
    ledgers = [asdict(s.settle(args.flush_timeout)) for s in senders]
    write_result(args.out, ledgers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
