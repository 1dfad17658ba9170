"""The Binance code -> ccxt exception table in the package docstring is what ccxt really does.

Each row is checked twice: through the fake (a reject fault makes POST /fapi/v1/order answer the
code, so ccxt sees the fake's URL), and by handing the same response to ccxt's handle_errors as if
it came from https://fapi.binance.com (no request is made), where ccxt's USDⓈ-M table applies.
"""

from __future__ import annotations

import json
import re
from typing import Any

import ccxt
import pytest

import tests.venue.binance as package
from tests.venue.binance import BinanceFake, FaultKind
from tests.venue.binance.errors import MESSAGES, STATUS

ROW = re.compile(r"^\s+(-\d{4})\s+(\d{3})\s+.+?\s{2,}(\w+)\s{2,}(\w+)\s*$")
PRODUCTION_URL = "https://fapi.binance.com/fapi/v1/order"


def table() -> list[tuple[int, int, str, str]]:
    doc = package.__doc__ or ""
    rows = [m.groups() for m in map(ROW.match, doc.splitlines()) if m]
    return [(int(code), int(status), fake_cls, prod_cls) for code, status, fake_cls, prod_cls in rows]


def test_table_is_complete() -> None:
    codes = [row[0] for row in table()]
    assert len(codes) == len(set(codes)) >= 30
    assert set(codes) <= set(MESSAGES)
    for code, status, _fake, _prod in table():
        assert STATUS.get(code, 400) == status, code


def test_the_fake_sends_documented_messages(exchange: Any, fake: BinanceFake) -> None:
    fake.arm(FaultKind.REJECT, count=1, code=-5022)
    with pytest.raises(ccxt.BaseError) as raised:
        exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 50000.0)
    assert json.loads(str(raised.value).split(" ", 1)[1]) == {
        "code": -5022, "msg": "Due to the order could not be executed as maker, the Post Only order will be rejected."
    }


@pytest.mark.parametrize(("code", "status", "via_fake", "at_binance"), table(), ids=str)
def test_ccxt_exception_for_code(exchange: Any, fake: BinanceFake, code: int, status: int, via_fake: str,
                                 at_binance: str) -> None:
    fake.arm(FaultKind.REJECT, count=1, code=code)
    with pytest.raises(ccxt.BaseError) as raised:
        exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 50000.0)
    assert type(raised.value).__name__ == via_fake
    assert exchange.last_http_response is not None
    body = exchange.last_http_response
    response = json.loads(body)
    assert response["code"] == code
    with pytest.raises(ccxt.BaseError) as production:
        exchange.handle_errors(status, "", PRODUCTION_URL, "POST", {}, body, response, None, None)
    assert type(production.value).__name__ == at_binance
