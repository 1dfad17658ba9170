"""Errors an exchange adapter raises. Each docstring says what the caller does next."""

from __future__ import annotations


class ExchangeError(Exception):
    """Base class. `code` is machine-readable (`insufficient_margin`, `post_only_would_cross` ...)."""

    kind = "error"

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class OrderRejected(ExchangeError):
    """The exchange refused the order; nothing was placed. Decide again (reprice, retry or give up)."""

    kind = "rejected"


class OrderNotFound(ExchangeError):
    """No order with that client order id exists on the exchange: it was never placed."""

    kind = "not_found"


class BadRequest(ExchangeError):
    """The request itself is invalid (unknown symbol, bad field). Retrying it unchanged is pointless."""

    kind = "bad_request"


class ExchangeUnavailable(ExchangeError):
    """No answer in time. The outcome of an order call is unknown: look the order up by its
    client order id before placing it again (placing is idempotent on that id)."""

    kind = "unavailable"


ERROR_KINDS: dict[str, type[ExchangeError]] = {
    cls.kind: cls for cls in (ExchangeError, OrderRejected, OrderNotFound, BadRequest, ExchangeUnavailable)
}
