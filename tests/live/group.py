"""The whole supervisord group in LIVE (or DRY_RUN) mode against the fake Binance venue.

The venue runs in the test process (tests/venue/binance, its own thread, 127.0.0.1); the group
is the repository's supervisord.conf in an isolated home, with `network = "testnet"` and
`rest_url` / `ws_url` pointed at the fake, so no process of the group can reach a Binance host.
The keys are made at run time and reach the gateway through the environment (V7_EXCHANGE_API_KEY
/ V7_EXCHANGE_API_SECRET), as an operator would pass them.

Everything the tests wait for is an event: a venue state change (`fake.wait_until`), a journal
record, a state file's content. Bars last one second (`kline_seconds`), the strategy's thresholds
and TTLs are the trading tests' fast ones (tests/trading/group.py), so positions open and close
within seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bus.messages import OrderFilled, RequestExit, SubmitOrder
from bus.messages.views import stored_in_scope
from cli.ops import supervisor_proxy
from cli.positions import fetch_views
from tests.harness import Instance, free_port_base
from tests.supervised import supervised_group, supervisor_logs
from tests.trading.group import committed, configure_fast, of_type
from tests.venue.binance import BinanceFake, VenueConfig
from tests.venue.conftest import Creds, new_creds

SYMBOLS = ("BTCUSDT", "ETHUSDT")
ACCOUNT = "testnet-1"
# Maker trades earn a rebate on this venue (a negative commission, as Binance pays on some
# symbols and VIP tiers): every maker fill of the group exercises it.
MAKER_FEE = Decimal("-0.0001")


def venue_config(**overrides: Any) -> VenueConfig:
    base: dict[str, Any] = {
        "tick_interval_s": 0.05, "mark_price_interval_s": 0.3, "mark_price_fast_interval_s": 0.1,
        "kline_seconds": {"1m": 1.0}, "maker_fee": MAKER_FEE,
        # The BTC walk moves a few ticks of 0.10 per step: widen it so signals come within seconds.
        "symbols": [s.model_copy(update={"volatility_ticks": 40.0 if s.symbol == "BTCUSDT" else 8.0})
                    for s in VenueConfig().symbols],
    }
    return VenueConfig(**{**base, **overrides})


@dataclass
class LiveInstance(Instance):
    """An instance whose processes also get `secret_env` (the venue keys) in their environment."""

    secret_env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.secret_env}

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
        """As Instance.wait_for; on a timeout the message ends with supervisord's program logs (the
        programs are supervisord's children here, not this instance's)."""
        try:
            super().wait_for(predicate, timeout, what, interval)
        except AssertionError as exc:
            raise AssertionError(f"{exc}{supervisor_logs(self)}") from None


def configure_live(inst: Instance, fake: BinanceFake, mode: str = "LIVE", extra_toml: str = "") -> None:
    """Fast strategy and loops (tests/trading/group.py) on the venue at `fake` in `mode`; positions
    live 4 s (the venue's bars are one second), so a round trip takes a few seconds."""
    configure_fast(inst)
    path = inst.home / "strategy_config.json"
    strategy = json.loads(path.read_text())
    strategy["entry"].update({"ttl_s": 4, "intent_expiry_s": 3})
    # The venue's walk trends less than the paper simulator: a lower bar makes the first signal
    # come within a few bars (these tests are about the path of an order, not the strategy).
    strategy["signal"]["entry_threshold"] = 0.12
    path.write_text(json.dumps(strategy, indent=2))
    symbols = ", ".join(f'"{s}"' for s in SYMBOLS)
    inst.write_config(
        f'mode = "{mode}"\naccount = "{ACCOUNT}"\nsymbols = [{symbols}]\n' + inst.extra_toml
        + f'\n[exchange]\nadapter = "binance_usdm"\nnetwork = "testnet"\nrest_url = "{fake.rest_url}"\n'
        f'ws_url = "{fake.ws_url}"\nleverage = 5\n' + extra_toml
    )


def trade_key(trade: dict[str, Any]) -> str:
    """The fill's trade_id as the adapter reports a venue trade (Binance trade ids are per symbol)."""
    return f"{trade['symbol']}-{trade['id']}"


@dataclass
class Group:
    inst: LiveInstance
    fake: BinanceFake
    creds: Creds
    supervisord: subprocess.Popen
    mode: str = "LIVE"

    # --- the venue ------------------------------------------------------------------------------

    def venue_orders(self) -> list[dict[str, Any]]:
        return self.fake.orders(self.creds.api_key)

    def venue_trades(self) -> list[dict[str, Any]]:
        return self.fake.trades(self.creds.api_key)

    def venue_positions(self) -> dict[str, float]:
        """symbol -> signed quantity of every open venue position."""
        return {p["symbol"]: float(p["positionAmt"]) for p in self.fake.positions(self.creds.api_key)
                if Decimal(p["positionAmt"]) != 0}

    # --- the group ------------------------------------------------------------------------------

    def fills(self) -> list[OrderFilled]:
        return [r.msg for r in of_type(committed(self.inst), "order_filled")]  # type: ignore[misc]

    def applied_fills(self) -> dict[str, tuple[float, float]]:
        """trade_id -> (qty, price) of every fill the positions store applied in the LIVE scope (its
        fill_record table, unique by trade id), read from the database file without writing it."""
        path = self.inst.home / "logs" / "positions.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute("SELECT trade_id, qty, price FROM fill_record WHERE mode = ? AND account = ?",
                              (self.mode, ACCOUNT)).fetchall()
        return {trade_id: (qty, price) for trade_id, qty, price in rows}

    def intents(self) -> dict[str, SubmitOrder | RequestExit]:
        """intent_id -> every committed order intent (entries, manual exits) and exit request."""
        records = committed(self.inst)
        found = of_type(records, "submit_order") + of_type(records, "request_exit")
        return {r.msg.intent_id: r.msg for r in found}  # type: ignore[attr-defined]

    def store_positions(self) -> dict[str, float] | None:
        """symbol -> signed quantity of the store's open positions in the LIVE scope (None: no answer)."""
        views = fetch_views(self.inst.settings, ["open_positions"])
        rows = stored_in_scope(None if views is None else views.get("open_positions"), self.mode, ACCOUNT)
        if rows is None:
            return None
        return {p.symbol: p.qty if p.side == "LONG" else -p.qty for p in rows}

    def info(self, program: str) -> dict[str, Any] | None:
        """supervisord's record of `program` (programs live in groups: ask by name across them)."""
        try:
            every = supervisor_proxy(self.inst.settings).supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error):
            return None
        return next((p for p in every if p["name"] == program), None)

    def pid(self, program: str) -> int:
        info = self.info(program)
        assert info is not None and info["statename"] == "RUNNING", info
        return int(info["pid"])

    def kill9(self, program: str) -> int:
        """SIGKILL one program (supervisord restarts it); returns the killed pid."""
        pid = self.pid(program)
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, program: str, old_pid: int, timeout: float = 30) -> None:
        def up() -> bool:
            info = self.info(program)
            return info is not None and info["statename"] == "RUNNING" and info["pid"] not in (0, old_pid)

        self.inst.wait_for(up, timeout, f"{program} to run again after kill -9")

    def log(self, program: str) -> str:
        path = self.inst.home / "logs" / "supervisor" / f"{program}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def state_file(self, name: str) -> dict[str, Any] | None:
        path = self.inst.state_dir / f"{name}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None


def new_instance(home: Path, creds: Creds | None) -> LiveInstance:
    """An instance whose processes get `creds` as V7_EXCHANGE_API_KEY/SECRET (None: no keys at all)."""
    keys = {} if creds is None else {"V7_EXCHANGE_API_KEY": creds.api_key, "V7_EXCHANGE_API_SECRET": creds.secret}
    return LiveInstance(home=home, port_base=free_port_base(), secret_env=keys)


@contextlib.contextmanager
def live_group(home: Path, mode: str = "LIVE", venue: VenueConfig | None = None,
               extra_toml: str = "") -> Iterator[Group]:
    """The fake venue and the whole group on it, up and answering; everything stopped on exit."""
    creds = new_creds()
    fake = BinanceFake(venue or venue_config(), keys={creds.api_key: creds.secret}).start()
    try:
        # DRY_RUN reads market data only: the group gets no keys, so it could not place an order if it tried.
        inst = new_instance(home, creds if mode == "LIVE" else None)
        configure_live(inst, fake, mode, extra_toml)
        checked = inst.run_cli("check-config")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        with supervised_group(inst) as proc:
            yield Group(inst, fake, creds, proc, mode)
    finally:
        fake.stop()
