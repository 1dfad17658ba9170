"""The account as the user stream moves it: ACCOUNT_UPDATE carries only a position's amount, entry
and unrealized PnL and the wallet balance; this fills in the rest (mark, leverage, margins,
realized PnL since the position opened) so each update becomes full `PositionChanged` /
`BalanceChanged` events. Re-seeded from REST at every (re)connect of the user stream.

Margins are cross-margin arithmetic (|amount| x mark / leverage); the open-order margin is the
last REST reading (ACCOUNT_UPDATE does not carry it). Stream thread only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exchange.adapter import Balance, ExchangeFill, ExchangePosition
from exchange.binance_usdm.payloads import balance_from_account, dt, num
from exchange.streams import BalanceChanged, PositionChanged

Json = dict[str, Any]
DEFAULT_LEVERAGE = 20.0  # Binance's default for a symbol never configured


@dataclass
class _Position:
    amount: float  # signed: + long, - short
    entry: float
    unrealized: float
    realized: float  # since the position opened (sum of its fills' realizedPnl)
    opened_at: datetime | None
    updated_at: datetime


class AccountState:
    def __init__(self, symbols: list[str], asset: str = "USDT") -> None:
        self.symbols = symbols
        self.asset = asset
        self.positions: dict[str, _Position] = {}
        self.leverage: dict[str, float] = {}
        self.marks: dict[str, float] = {}
        self.balance_seed: Balance | None = None
        self.wallet = 0.0
        self._realized_pending: dict[str, float] = {}

    # --- inputs ---------------------------------------------------------------------------------

    def reset(self, position_rows: list[Json], account: Json) -> None:
        """Take the REST truth (GET /fapi/v3/positionRisk and /fapi/v3/account)."""
        fresh: dict[str, _Position] = {}
        for row in position_rows:
            if row.get("positionSide", "BOTH") != "BOTH":
                continue
            amount = num(row.get("positionAmt"))
            if amount == 0.0:
                continue
            symbol = row["symbol"]
            old = self.positions.get(symbol)
            same = old is not None and (old.amount > 0) == (amount > 0)
            mark = num(row.get("markPrice"))
            if mark > 0:
                self.marks[symbol] = mark
            fresh[symbol] = _Position(amount, num(row.get("entryPrice")), num(row.get("unRealizedProfit")),
                                      old.realized if same and old else 0.0,
                                      old.opened_at if same and old else None, dt(row.get("updateTime") or 0))
        self.positions = fresh
        self._realized_pending.clear()
        self.balance_seed = balance_from_account(account, self.asset)
        self.wallet = self.balance_seed.wallet_balance

    def set_leverage(self, symbol: str, leverage: float) -> None:
        if leverage > 0:
            self.leverage[symbol] = leverage

    def set_mark(self, symbol: str, mark: float) -> None:
        if mark > 0:
            self.marks[symbol] = mark

    def on_fill(self, fill: ExchangeFill) -> None:
        self._realized_pending[fill.symbol] = self._realized_pending.get(fill.symbol, 0.0) + fill.realized_pnl

    def apply(self, update: Json, event_ms: Any) -> list[PositionChanged | BalanceChanged]:
        """ACCOUNT_UPDATE's "a" object: a PositionChanged per one-way position in it, then the balance."""
        ts = dt(event_ms)
        events: list[PositionChanged | BalanceChanged] = []
        for row in update.get("P", []):
            if row.get("ps", "BOTH") != "BOTH":
                continue
            symbol = row["s"]
            amount = num(row.get("pa"))
            old = self.positions.get(symbol)
            realized = self._realized_pending.pop(symbol, 0.0)
            if amount == 0.0:
                self.positions.pop(symbol, None)
            else:
                same = old is not None and (old.amount > 0) == (amount > 0)
                self.positions[symbol] = _Position(
                    amount, num(row.get("ep")), num(row.get("up")),
                    (old.realized + realized) if same and old else 0.0,
                    old.opened_at if same and old else ts, ts)
            events.append(PositionChanged(symbol=symbol, position=self.position(symbol)))
        wallet = next((b for b in update.get("B", []) if b.get("a") == self.asset), None)
        if wallet is not None:
            self.wallet = num(wallet.get("wb"))
        if wallet is not None or events:
            events.append(BalanceChanged(balance=self.balance(ts)))
        return events

    # --- outputs --------------------------------------------------------------------------------

    def _mark(self, symbol: str, pos: _Position) -> float:
        mark = self.marks.get(symbol)
        if mark:
            return mark
        # No mark yet: the one the venue priced this uPnL at (up = (mark - entry) x amount).
        return pos.entry + pos.unrealized / pos.amount if pos.amount else pos.entry

    def position(self, symbol: str) -> ExchangePosition | None:
        pos = self.positions.get(symbol)
        if pos is None or pos.entry <= 0:
            return None
        mark = self._mark(symbol, pos)
        leverage = self.leverage.get(symbol, DEFAULT_LEVERAGE)
        qty = abs(pos.amount)
        unrealized = (mark - pos.entry) * pos.amount if symbol in self.marks else pos.unrealized
        return ExchangePosition(
            symbol=symbol, side="LONG" if pos.amount > 0 else "SHORT", qty=qty, entry_price=pos.entry,
            mark_price=mark if mark > 0 else pos.entry, unrealized_pnl=unrealized, realized_pnl=pos.realized,
            leverage=leverage, margin=qty * mark / leverage, opened_at=pos.opened_at, updated_at=pos.updated_at)

    def all_positions(self) -> list[ExchangePosition]:
        return [p for s in sorted(self.positions) if (p := self.position(s)) is not None]

    def balance(self, ts: datetime) -> Balance:
        positions = self.all_positions()
        unrealized = sum(p.unrealized_pnl for p in positions)
        position_margin = sum(p.margin for p in positions)
        order_margin = self.balance_seed.order_margin if self.balance_seed is not None else 0.0
        margin_balance = self.wallet + unrealized
        return Balance(asset=self.asset, wallet_balance=round(self.wallet, 8), unrealized_pnl=round(unrealized, 8),
                       margin_balance=round(margin_balance, 8), position_margin=round(position_margin, 8),
                       order_margin=round(order_margin, 8),
                       available_balance=round(margin_balance - position_margin - order_margin, 8), ts=ts)
