"""`Work`: what the router executes, from either an order intent or an exit trigger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bus.messages import RequestExit, SubmitOrder
from domain.vocabulary import Mode, OrderSide


@dataclass(frozen=True, slots=True)
class Work:
    intent_id: str
    mode: Mode
    account: str
    symbol: str
    side: OrderSide
    qty: float
    reduce_only: bool
    purpose: str  # entry | exit_tp | exit_sl | exit_ttl | ...
    position_id: str | None
    arrival_mid: float | None
    expires_at: datetime | None
    taker_only: bool

    @property
    def is_exit(self) -> bool:
        return self.purpose.startswith("exit")

    @classmethod
    def from_intent(cls, intent: SubmitOrder) -> Work:
        # An operator's exit (`v7 flatten`) is about getting out now: taker.
        return cls(intent.intent_id, intent.mode, intent.account, intent.symbol, intent.side, intent.qty,
                   intent.reduce_only, intent.purpose, intent.position_id, intent.arrival_mid, intent.expires_at,
                   taker_only=intent.purpose == "exit_manual")

    @classmethod
    def from_exit(cls, trigger: RequestExit, sl_taker: bool) -> Work:
        # Stops are about getting out, not about the fee: taker at once when configured.
        return cls(trigger.intent_id, trigger.mode, trigger.account, trigger.symbol, trigger.side, trigger.qty,
                   True, f"exit_{trigger.reason.lower()}", trigger.position_id, trigger.mark_price, None,
                   taker_only=sl_taker and trigger.reason == "SL")

    @classmethod
    def from_pending(cls, raw: dict[str, Any], sl_taker: bool) -> Work | None:
        """From one entry of the hub's `pending_intents` (a wire dict plus the hub's seq)."""
        body = {k: v for k, v in raw.items() if k != "seq"}
        if body.get("type") == SubmitOrder.TYPE:
            return cls.from_intent(SubmitOrder.model_validate(body))
        if body.get("type") == RequestExit.TYPE:
            return cls.from_exit(RequestExit.model_validate(body), sl_taker)
        return None
