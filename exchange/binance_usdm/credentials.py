"""API keys: held as `SecretStr`, loaded by the caller, and scrubbed from every log line we own.

A key or secret must never reach a log, an exception message, a repr, a metric or a state
file. `SecretStr` keeps them out of reprs and model dumps; `RedactingFilter` replaces them in
records of the loggers the adapter hands to ccxt and websockets (ccxt logs request headers,
which carry the API key, at DEBUG level). Error messages are built from Binance's code and
message only, never from a request.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

KEY_ENV = "V7_EXCHANGE_API_KEY"
SECRET_ENV = "V7_EXCHANGE_API_SECRET"
MASK = "***"
# A listenKey is a bearer token for the account's events: masked in a websocket path (/ws/<key>,
# streams=<key>) and in a JSON body ("listenKey":"<key>", ccxt logs the POST answer at DEBUG).
_LISTEN_KEY = re.compile(r"""(/ws/|streams=|["']listenKey["']\s*:\s*["'])([A-Za-z0-9]{30,})""")


class CredentialsError(ValueError):
    """The keys could not be loaded. The message names the variable or file to fix, never a value."""


class ApiCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    secret: SecretStr

    @field_validator("api_key", "secret")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiCredentials:
        env = os.environ if environ is None else environ
        missing = [name for name in (KEY_ENV, SECRET_ENV) if not env.get(name, "").strip()]
        if missing:
            raise CredentialsError(f"set {' and '.join(missing)} (or set exchange.key_file in runtime.toml)")
        return cls(api_key=SecretStr(env[KEY_ENV].strip()), secret=SecretStr(env[SECRET_ENV].strip()))

    @classmethod
    def from_key_file(cls, path: Path) -> ApiCredentials:
        """JSON {"api_key": ..., "api_secret": ...}; the file must be readable by its owner only (0600)."""
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise CredentialsError(f"key file {path}: cannot read ({exc.strerror})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(f"key file {path}: mode {stat.S_IMODE(mode):04o} lets others read it; chmod 600")
        try:
            data = json.loads(path.read_text())
            return cls(api_key=SecretStr(str(data["api_key"]).strip()),
                       secret=SecretStr(str(data.get("api_secret", data.get("secret", ""))).strip()))
        except (ValueError, KeyError, TypeError, AttributeError):
            # The parser's message could quote the file's content: say only what is wrong.
            raise CredentialsError(f"key file {path}: expected JSON with \"api_key\" and \"api_secret\"") from None

    def secrets(self) -> tuple[str, str]:
        return self.api_key.get_secret_value(), self.secret.get_secret_value()


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    return _LISTEN_KEY.sub(lambda m: m.group(1) + m.group(2)[:4] + MASK, text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with every registered secret (and any listenKey in a URL) masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: keep only its format string
            message = str(record.msg)
        clean = redact(message, tuple(_SECRETS))
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


# Secrets of every adapter in this process: one filter serves them all, so creating adapters
# (tests create many) never piles filters onto the library loggers.
_SECRETS: set[str] = set()
_FILTER = RedactingFilter()


def register_secrets(credentials: ApiCredentials) -> None:
    _SECRETS.update(s for s in credentials.secrets() if s)


def quiet_logger(name: str) -> logging.Logger:
    """A logger we hand to a library (ccxt, websockets), with the redaction attached."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def short_key(listen_key: str) -> str:
    """A listenKey as it may appear in our logs."""
    return listen_key[:4] + MASK
