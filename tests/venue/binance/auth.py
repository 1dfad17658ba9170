"""API keys and HMAC-SHA256 request signing (X-MBX-APIKEY, timestamp, recvWindow, signature)."""

from __future__ import annotations

import hashlib
import hmac

from .clock import VenueClock
from .config import KeySpec
from .errors import BinanceError, error, mandatory, timestamp_ahead
from .faults import FaultKind, FaultRegistry
from .numbers import parse_int

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000


class KeyRegistry:
    def __init__(self, keys: list[KeySpec]) -> None:
        self._keys: dict[str, KeySpec] = {}
        for key in keys:
            self.add(key)

    def add(self, key: KeySpec) -> None:
        self._keys[key.api_key] = key

    def get(self, api_key: str) -> KeySpec | None:
        return self._keys.get(api_key)

    def all(self) -> list[KeySpec]:
        return list(self._keys.values())

    def set_permissions(self, api_key: str, **permissions: bool) -> KeySpec:
        key = self._keys[api_key]
        updated = key.model_copy(update=permissions)
        self._keys[api_key] = updated
        return updated


def split_signature(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """totalParams (query string concatenated with the body) without the signature, and the signature."""
    signature = None
    parts_out: list[str] = []
    for raw in (raw_query, raw_body):
        kept = []
        for piece in raw.split("&") if raw else []:
            if piece.startswith("signature="):
                signature = piece[len("signature="):]
            else:
                kept.append(piece)
        parts_out.append("&".join(kept))
    return parts_out[0] + parts_out[1], signature


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class Authenticator:
    def __init__(self, keys: KeyRegistry, clock: VenueClock, faults: FaultRegistry) -> None:
        self.keys = keys
        self.clock = clock
        self.faults = faults

    def api_key(self, header: str | None) -> KeySpec:
        """USER_STREAM security: a known X-MBX-APIKEY."""
        if not header:
            raise error(-2014)
        key = self.keys.get(header)
        if key is None:
            raise error(-2015)
        return key

    def require_futures(self, key: KeySpec) -> None:
        revoked = self.faults.peek(FaultKind.NO_FUTURES_PERMISSION, api_key=key.api_key)
        if not key.enable_futures or revoked is not None:
            raise error(-2015)

    def signed(self, header: str | None, raw_query: str, raw_body: str, params: dict[str, str]) -> KeySpec:
        """TRADE/USER_DATA security: key, then signature, then timestamp within recvWindow."""
        key = self.api_key(header)
        payload, signature = split_signature(raw_query, raw_body)
        if not signature:
            raise mandatory("signature")
        if not hmac.compare_digest(sign(key.secret, payload), signature.lower()):
            raise error(-1022)
        timestamp = parse_int("timestamp", params.get("timestamp"), required=True)
        assert timestamp is not None
        recv_window = parse_int("recvWindow", params.get("recvWindow")) or DEFAULT_RECV_WINDOW_MS
        if recv_window > MAX_RECV_WINDOW_MS or recv_window <= 0:
            raise error(-1130, "recvWindow")
        now = self.clock.now_ms()
        if timestamp >= now + 1000:
            raise timestamp_ahead()
        if now - timestamp > recv_window:
            raise error(-1021)
        return key


__all__ = ["Authenticator", "BinanceError", "KeyRegistry", "sign", "split_signature"]
