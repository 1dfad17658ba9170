"""Helpers for state-plane tests: a raw protocol client, message factories.

`RawClient` speaks the ingest protocol byte by byte (it is a second, independent client of the
wire format, the way a client in another language would be), so tests can send frames our
own Sender never would: garbage, wrong frame counts, out-of-order sseqs, exact resends.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import msgpack
import zmq

from bus.messages import (
    REGISTRY,
    Kpis,
    LedgerEntry,
    LedgerMetadata,
    PortfolioKpis,
    PositionRow,
    PositionsLedger,
    PositionsState,
    SymbolKpis,
    TpSlLevels,
)
from tests import SIM_SCOPE
from tests.harness import Instance


def position(symbol: str = "BTCUSDT", qty: float = 0.01, entry: float = 42000.0, mark: float = 43000.0,
             realized: float = 0.0) -> PositionRow:
    side = "LONG" if qty > 0 else "FLAT"
    return PositionRow(symbol=symbol, side=side, qty=qty, entry_price=entry, mark_price=mark,
                       notional=abs(qty * mark), realized_pnl=realized, unrealized_pnl=(mark - entry) * qty)


def positions(*rows: PositionRow) -> PositionsState:
    return PositionsState(scope=SIM_SCOPE, positions=list(rows))


def ledger(n: int = 1) -> PositionsLedger:
    entries = [LedgerEntry(symbol=s, side="LONG", position_id=f"p{i}", qty=0.1, entry_price=100.0 + i, tp=120.0,
                           sl=90.0) for i, s in enumerate(["BTCUSDT", "ETHUSDT", "SOLUSDT"][:n])]
    return PositionsLedger(scope=SIM_SCOPE, entries=entries,
                           tp_sl_levels={e.symbol: TpSlLevels(tp=e.tp, sl=e.sl) for e in entries},
                           metadata=LedgerMetadata(entry_count=len(entries)))


def kpis() -> Kpis:
    return Kpis(scope=SIM_SCOPE,
        portfolio=PortfolioKpis(nav=4093.43, dd_pct=0.0326, var_nav_pct=0.0056, cvar_nav_pct=0.007),
                       per_symbol={"BTCUSDT": SymbolKpis(pnl=12.34, pnl_pct=0.0123, exposure_nav_pct=0.1)})


def producer_of(msg: dict[str, Any]) -> str:
    """A program allowed to send `msg` (the hub checks): a heartbeat's own actor, else its type's producer."""
    if msg.get("type") == "heartbeat" and isinstance(msg.get("actor"), str):
        return msg["actor"]
    versions = REGISTRY.get(msg.get("type")) if isinstance(msg.get("type"), str) else None
    if not versions:
        return "executor"
    return sorted(next(iter(versions.values())).PRODUCERS)[0]


def envelope(msg: dict[str, Any], *, src: str | None = None, stream: str = "", inc: int = 1, sseq: int = 1,
             oldest: int | None = None, ts: float | None = None) -> bytes:
    """An ingest frame. `src` defaults to a producer allowed to send `msg`; `stream` names a
    sender incarnation of its own (its `inc`), so tests keep their streams apart."""
    return msgpack.packb({"src": producer_of(msg) if src is None else src, "inc": zlib.crc32(stream.encode()) if stream
                          else inc, "sseq": sseq, "oldest": sseq if oldest is None else oldest,
                          "ts": time.time() if ts is None else ts, "msg": msg})


class RawClient:
    """A DEALER on the hub's ingest that sends exact frames and reads the reply arrays."""

    def __init__(self, inst: Instance) -> None:
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(inst.settings.ingest_endpoint)

    def send(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def replies(self, count: int = 1, timeout: float = 10.0) -> list[list[Any]]:
        """The next `count` reply items (a reply frame may carry several)."""
        out: list[list[Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise AssertionError(f"got {len(out)} of {count} replies: {out}")
            out.extend(msgpack.unpackb(self.sock.recv(), raw=False))
        return out

    def ask(self, *frames: bytes, timeout: float = 10.0) -> list[Any]:
        self.send(*frames)
        return self.replies(1, timeout)[0]

    def close(self) -> None:
        self.sock.close(0)
