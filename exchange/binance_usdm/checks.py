"""The start-up check: is this key and account fit to trade these symbols, and if not, what to fix.

In order (a problem is named with what fixes it; the check never changes the position mode):
1. the server time offset (signed requests carry local time + offset from here on);
2. exchange filters (tick, lot, minimum notional) and each symbol listed and TRADING;
3. the key: futures permission (GET /sapi/v1/account/apiRestrictions `enableFutures` where the
   network has the wallet API) and a signed futures read (-2015: key, IP or permission; -1022:
   the secret does not belong to the key);
4. one-way position mode: a dual-side (hedge) account is refused before any order is sent;
5. margin type and leverage per symbol: set where they differ (`fix`), or reported. -4046
   ("no need to change") is success; -4047/-4048 (open orders or a position) are problems.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from exchange.adapter import ExchangeModel, Instrument
from exchange.binance_usdm.config import MarginType
from exchange.binance_usdm.errors import NO_NEED_TO_CHANGE_MARGIN_TYPE, AccountProblem
from exchange.binance_usdm.filters import SymbolRules, parse_exchange_info, weight_limit
from exchange.binance_usdm.rest import BinanceRest, RequestFailed
from exchange.errors import BadRequest, ExchangeError

log = logging.getLogger(__name__)

FIX_KEY = ("use an API key with 'Enable Futures' ticked (Binance API Management), from an allowed IP, "
           "for this network")


class AccountReport(ExchangeModel):
    """What the check found and did; `problems` empty means ready to trade."""

    symbols: list[str]
    time_offset_ms: float
    round_trip_ms: float | None = None
    futures_enabled: bool | None = Field(default=None, description="From the wallet API; None where it has none.")
    one_way: bool | None = None
    leverage: dict[str, int] = Field(default_factory=dict)
    margin_type: dict[str, MarginType] = Field(default_factory=dict)
    instruments: dict[str, Instrument] = Field(default_factory=dict)
    changed: list[str] = Field(default_factory=list)
    problems: list[AccountProblem] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Findings:
    futures_enabled: bool | None = None
    one_way: bool | None = None
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, MarginType] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    problems: list[AccountProblem] = field(default_factory=list)


class AccountCheck:
    def __init__(self, rest: BinanceRest, symbols: list[str], leverage: int | Mapping[str, int] | None,
                 margin_type: MarginType | None, fix: bool) -> None:
        self.rest = rest
        self.symbols = symbols
        self.leverage = leverage
        self.margin_type = margin_type
        self.fix = fix
        self.rules: dict[str, SymbolRules] = {}
        self.weight_limit: int | None = None

    def run(self) -> AccountReport:
        offset = self.rest.sync_time()
        found = _Findings()
        self._filters(found)
        if self._key(found):
            self._position_mode(found)
            self._symbol_settings(found)
        return AccountReport(symbols=self.symbols, time_offset_ms=round(offset, 1),
                             round_trip_ms=self.rest.clock.round_trip_ms, **vars(found))

    # --- the steps --------------------------------------------------------------------------------

    def _filters(self, found: _Findings) -> None:
        info = self.rest.request("fapiPublicGetExchangeInfo")
        self.rules = parse_exchange_info(info)
        self.weight_limit = weight_limit(info)
        for symbol in self.symbols:
            rules = self.rules.get(symbol)
            if rules is None:
                found.problems.append(AccountProblem(check="symbol", symbol=symbol, detail="not listed on this venue",
                                               fix="remove it from the configured symbols"))
            elif not rules.trading:
                found.problems.append(AccountProblem(check="symbol", symbol=symbol, detail=f"status {rules.status}",
                                               fix="remove it from the configured symbols until it trades again"))
            else:
                found.instruments[symbol] = rules.instrument()

    def _key(self, found: _Findings) -> bool:
        """Futures permission. False when no signed futures request works (nothing more can be checked)."""
        if self.rest.has_sapi:
            try:
                restrictions = self.rest.request("sapiGetAccountApiRestrictions")
                enabled = bool(restrictions.get("enableFutures", False))
                found.futures_enabled = enabled
                if not enabled:
                    found.problems.append(AccountProblem(check="api_key", detail="the key has no futures permission "
                                                   "(apiRestrictions enableFutures is false)", fix=FIX_KEY))
                    return False
            except ExchangeError as exc:
                log.warning("could not read the key's restrictions (%s); probing a futures read instead", exc.code)
        try:
            dual = self.rest.request("fapiPrivateGetPositionSideDual")
        except BadRequest as exc:
            detail = ("the secret does not match the key (signature invalid)" if exc.code == "auth_failed"
                      else f"signed futures requests are refused ({exc.detail})")
            found.problems.append(AccountProblem(check="api_key", detail=detail, fix=FIX_KEY))
            return False
        found.one_way = not bool(dual.get("dualSidePosition"))
        return True

    def _position_mode(self, found: _Findings) -> None:
        if found.one_way is False:
            found.problems.append(AccountProblem(
                check="position_mode", detail="the account is in Hedge mode (dual-side positions)",
                fix="switch it to One-way mode (Futures > Preferences > Position Mode, with no open position "
                    "or order); this runtime trades one-way only"))

    def _symbol_settings(self, found: _Findings) -> None:
        listed = [s for s in self.symbols if s in found.instruments]
        if not listed:
            return
        config = {row["symbol"]: row for row in self.rest.request("fapiPrivateGetSymbolConfig")}
        for symbol in listed:
            row = config.get(symbol, {})
            current_type: str = str(row.get("marginType", "CROSSED")).upper()
            current_leverage = int(float(row.get("leverage", 0) or 0))
            if self.margin_type is not None and current_type != self.margin_type:
                current_type = self._set_margin_type(symbol, current_type, found)
            wanted = self._wanted_leverage(symbol)
            if wanted is not None and wanted != current_leverage:
                current_leverage = self._set_leverage(symbol, current_leverage, wanted, found)
            if current_type in ("CROSSED", "ISOLATED"):
                found.margin_type[symbol] = current_type  # type: ignore[assignment]
            if current_leverage > 0:
                found.leverage[symbol] = current_leverage

    def _wanted_leverage(self, symbol: str) -> int | None:
        if self.leverage is None or isinstance(self.leverage, int):
            return self.leverage
        return self.leverage.get(symbol)

    def _set_margin_type(self, symbol: str, current: str, found: _Findings) -> str:
        wanted = self.margin_type
        assert wanted is not None
        if not self.fix:
            found.problems.append(AccountProblem(
                check="margin_type", symbol=symbol, detail=f"is {current}, not {wanted}",
                fix=f"set {symbol} to {wanted} margin, or configure margin_type {current}"))
            return current
        try:
            self.rest.send("fapiPrivatePostMarginType", {"symbol": symbol, "marginType": wanted})
        except RequestFailed as exc:
            if exc.failure.code != NO_NEED_TO_CHANGE_MARGIN_TYPE:
                found.problems.append(AccountProblem(
                    check="margin_type", symbol=symbol, detail=f"is {current}; {wanted} refused: {exc.failure.msg}",
                    fix=f"close {symbol}'s position and open orders, then start again (or configure margin_type "
                        f"{current})"))
                return current
        found.changed.append(f"{symbol} margin type {current} -> {wanted}")
        return wanted

    def _set_leverage(self, symbol: str, current: int, wanted: int, found: _Findings) -> int:
        if not self.fix:
            found.problems.append(AccountProblem(check="leverage", symbol=symbol,
                                                 detail=f"is {current}x, not {wanted}x",
                                                 fix=f"set {symbol} leverage to {wanted}x"))
            return current
        try:
            answer: Any = self.rest.send("fapiPrivatePostLeverage", {"symbol": symbol, "leverage": wanted})
        except RequestFailed as exc:
            found.problems.append(AccountProblem(check="leverage", symbol=symbol,
                                           detail=f"is {current}x; {wanted}x refused: {exc.failure.msg}",
                                           fix=f"configure a leverage {symbol} allows (its brackets' maximum)"))
            return current
        applied = int(answer.get("leverage", wanted))
        found.changed.append(f"{symbol} leverage {current}x -> {applied}x")
        return applied
