"""Runtime settings: endpoints, ports, paths, loop intervals, symbols.

Precedence (later wins): built-in defaults < `config/runtime.toml` in the repo <
`$V7_HOME/runtime.toml` < environment overrides `V7_<SECTION>__<KEY>`.
A whole isolated instance (own directory, own ports) is one setting: point `V7_HOME` at a
directory whose `runtime.toml` sets `port_base`. Unknown keys and bad values stop start-up
with `ConfigError` naming the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.vocabulary import Mode, ReconcilePolicy, VenueNetwork

REPO_CONFIG_DIR = Path(__file__).resolve().parent
REPO_ROOT = REPO_CONFIG_DIR.parent

ACTORS: tuple[str, ...] = (
    "state_writer",
    "exchange",
    "executor",
    "router",
    "exit_scanner",
    "sync",
    "diagnostics",
    "dashboard",
)


class ConfigError(Exception):
    """Bad configuration. Start-up stops; the message names the file and the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BusSettings(Section):
    """Endpoints default to ipc sockets in the 0700 run directory. Set tcp://127.0.0.1:PORT to use TCP."""

    ingest: str | None = None
    updates: str | None = None
    snapshot: str | None = None
    heartbeat_s: float = Field(default=1.0, gt=0.0, le=60.0)
    max_frame_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    sndhwm: int = Field(default=100_000, ge=100)
    linger_ms: int = Field(default=1000, ge=0)
    # TCP only (ipc peers die with a closed socket, which the kernel reports at once). A link
    # that silently drops packets leaves a TCP connection open for minutes, and after it comes
    # back the kernel's retransmission backoff can hold traffic another 20-60 s. ZMTP heartbeats
    # find a dead connection within the timeout and let ZeroMQ open a fresh one; the connect
    # timeout bounds each attempt, so one is made every few seconds while the link is down.
    tcp_heartbeat_s: float = Field(
        default=1.0, ge=0.0, le=60.0, description="ZMTP heartbeat on TCP connections (0: off).")
    tcp_heartbeat_timeout_s: float = Field(
        default=5.0, gt=0.0, le=600.0, description="A TCP connection silent this long is closed and reopened.")
    tcp_connect_timeout_s: float = Field(
        default=2.0, gt=0.0, le=60.0, description="One TCP connect attempt gives up after this, then retries.")
    # CURVE for TCP endpoints (required on any non-loopback TCP bind). Certificate files as
    # written by `v7 keys new` (zmq.auth format): NAME.key (public) and NAME.key_secret.
    curve_server_cert: Path | None = Field(default=None, description="Hub: its secret certificate.")
    curve_allowed_clients_dir: Path | None = Field(default=None, description="Hub: public certs allowed in.")
    curve_server_public_cert: Path | None = Field(default=None, description="Clients: the hub's public cert.")
    curve_client_cert: Path | None = Field(default=None, description="Clients: this host's secret certificate.")


class SenderSettings(Section):
    outbox_max: int = Field(default=10_000, ge=10, description="Unacknowledged messages held per sender.")
    resend_after_s: float = Field(default=2.0, gt=0.0)
    ack_timeout_s: float = Field(default=30.0, gt=0.0, description="send_and_wait gives up after this.")


class WriterSettings(Section):
    tick_ms: int = Field(default=100, ge=5, le=10_000, description="File-write coalescing period.")
    batch_max: int = Field(default=2048, ge=1, description="Most messages per group commit.")
    snapshot_every_messages: int = Field(default=20_000, ge=100)
    snapshot_every_s: float = Field(default=60.0, gt=0.0)
    journal_segment_bytes: int = Field(default=64 << 20, ge=4096)
    dedup_streams_max: int = Field(default=4096, ge=16)


class StoreSettings(Section):
    """The positions store (actors/state_writer/store; docs/positions_store.md)."""

    db_schema: str | None = Field(
        default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema for the store's tables (created if missing); SQLite: leave unset.")
    extremes_flush_s: float = Field(
        default=5.0, ge=0.0, le=3600.0,
        description="Trade extremes reach the database at most once per position per this many seconds "
                    "(and always with a fill or close of that position).")
    reconcile_policy: ReconcilePolicy = "warn"
    reconcile_interval_s: float = Field(default=60.0, ge=1.0, le=86_400.0)
    qty_tolerance: float = Field(
        default=1e-9, ge=0.0, le=0.01, description="Relative qty difference treated as equal when reconciling.")
    # NORMAL: a commit does not wait for its own fsync (the WAL is synced at checkpoints). Safe
    # here: the journal is fsynced first, and a store that lost its last commits to a power cut
    # replays them from the journal (its applied_seq rolled back with them).
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "NORMAL"


class DashboardSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=1, le=65535)


class ExchangeSettings(Section):
    """Which exchange adapter the gateway hosts, and where it answers.

    SIM: `adapter = "paper"` (the built-in paper exchange). DRY_RUN and LIVE:
    `adapter = "binance_usdm"` on `network` (testnet, demo or mainnet; `rest_url` / `ws_url`
    replace its hosts, e.g. a local Binance-compatible server). DRY_RUN takes the venue's
    market data and fills orders on the paper engine; LIVE places orders on the venue, with the
    keys from V7_EXCHANGE_API_KEY / V7_EXCHANGE_API_SECRET or `key_file` (JSON, mode 0600).
    """

    adapter: Literal["paper", "binance_usdm"] = "paper"
    network: VenueNetwork = "testnet"
    rest_url: str | None = Field(default=None, pattern=r"^https?://", description="Replaces the network's REST host.")
    ws_url: str | None = Field(default=None, pattern=r"^wss?://", description="Replaces the network's websocket host.")
    key_file: Path | None = Field(default=None, description="JSON {api_key, api_secret}, mode 0600 (LIVE).")
    confirm_mainnet: bool = Field(default=False, description="LIVE on mainnet trades real money: say so here.")
    leverage: int = Field(default=5, ge=1, le=125, description="Set (or verified) per symbol at start-up (LIVE).")
    margin_type: Literal["CROSSED", "ISOLATED"] = "CROSSED"
    bar_interval: Literal["1m", "3m", "5m", "15m", "30m", "1h"] = "1m"
    endpoint: str | None = Field(default=None, description="Requests (RPC). Default: ipc://<run_dir>/exchange.sock.")
    stream_endpoint: str | None = Field(
        default=None, description="Market and account streams (PUB). Default: ipc://<run_dir>/exchange-stream.sock.")
    timeout_s: float = Field(default=3.0, gt=0.0, le=60.0, description="One exchange call gives up after this.")


class InstrumentSettings(Section):
    """One simulated perpetual: start price, volatility, spread and exchange filters."""

    price: float = Field(gt=0.0, description="Start price (quote per base unit).")
    annual_vol: float = Field(gt=0.0, le=5.0, description="Annualised volatility of the simulated mid.")
    spread_bps: float = Field(gt=0.0, le=100.0)
    tick_size: float = Field(gt=0.0)
    lot_size: float = Field(gt=0.0)
    min_notional: float = Field(default=5.0, ge=0.0)


DEFAULT_INSTRUMENTS: dict[str, dict[str, float]] = {
    "BTCUSDT": {"price": 65000.0, "annual_vol": 0.55, "spread_bps": 1.0, "tick_size": 0.1, "lot_size": 0.001},
    "ETHUSDT": {"price": 3200.0, "annual_vol": 0.70, "spread_bps": 1.5, "tick_size": 0.01, "lot_size": 0.001},
    "SOLUSDT": {"price": 150.0, "annual_vol": 0.95, "spread_bps": 3.0, "tick_size": 0.001, "lot_size": 0.1},
    "BNBUSDT": {"price": 580.0, "annual_vol": 0.60, "spread_bps": 2.0, "tick_size": 0.01, "lot_size": 0.01},
    "XRPUSDT": {"price": 0.55, "annual_vol": 0.90, "spread_bps": 3.0, "tick_size": 0.0001, "lot_size": 0.1},
}


class PaperSettings(Section):
    """The paper exchange (SIM mode). Market time runs `time_scale` times faster than wall time
    (10 s bars x 30 = 5-minute bars by default), so paper trades open and close while you
    watch; volatility stays the annualised figure a trader knows."""

    seed: int = Field(default=23, description="Market path seed (23: every default symbol trends early on).")
    tick_s: float = Field(default=0.25, ge=0.01, le=10.0, description="Wall seconds per simulation step.")
    bar_s: float = Field(default=10.0, ge=0.1, le=3600.0, description="Wall seconds per OHLC bar.")
    time_scale: float = Field(default=30.0, ge=1.0, le=10_000.0, description="Market seconds per wall second.")
    warmup_bars: int = Field(default=200, ge=0, le=5000, description="History generated on first start.")
    starting_balance: float = Field(default=10_000.0, gt=0.0)
    leverage: float = Field(default=5.0, ge=1.0, le=125.0)
    maker_fee_bps: float = Field(default=2.0, ge=0.0, le=100.0)
    taker_fee_bps: float = Field(default=5.0, ge=0.0, le=100.0)
    touch_fill_rate_per_s: float = Field(
        default=0.5, ge=0.0, le=100.0, description="Rate at which a resting order at the touch gets (part) filled.")
    reject_prob: float = Field(default=0.01, ge=0.0, le=0.5, description="Chance an order is rejected (overload).")
    instruments: dict[str, InstrumentSettings] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: Any) -> Any:
        # A runtime.toml that adds or tunes one instrument keeps the built-in ones.
        if isinstance(data, dict):
            given = data.get("instruments") or {}
            if isinstance(given, dict):
                merged: dict[str, Any] = {k: dict(v) for k, v in DEFAULT_INSTRUMENTS.items()}
                for name, spec in given.items():
                    merged[name] = {**merged.get(name, {}), **spec} if isinstance(spec, dict) else spec
                data = {**data, "instruments": merged}
        elif data is None:
            data = {"instruments": {k: dict(v) for k, v in DEFAULT_INSTRUMENTS.items()}}
        return data


class Settings(Section):
    home: Path = Field(default=REPO_ROOT, description="Instance directory: logs/, run/, var/ live here.")
    port_base: int = Field(default=9170, ge=1024, le=65000, description="Metrics ports are port_base + offset.")
    mode: Mode = "SIM"
    account: str = Field(default="paper", min_length=1, max_length=64)
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    state_dir: Path | None = None
    journal_dir: Path | None = None
    run_dir: Path | None = None
    var_dir: Path | None = None
    mirror_dir: Path | None = None
    db_url: str | None = None
    strategy_config: Path = REPO_CONFIG_DIR / "strategy_config.json"
    risk_limits: Path = REPO_CONFIG_DIR / "risk_limits.json"
    metrics_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    bus: BusSettings = Field(default_factory=BusSettings)
    sender: SenderSettings = Field(default_factory=SenderSettings)
    writer: WriterSettings = Field(default_factory=WriterSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    paper: PaperSettings = Field(default_factory=lambda: PaperSettings.model_validate({}))
    loop_s: dict[str, float] = Field(default_factory=dict, description="Loop interval per actor name.")

    @model_validator(mode="after")
    def _known_actor_loops(self) -> Settings:
        for name, value in self.loop_s.items():
            if name not in ACTORS:
                raise ValueError(f"loop_s.{name}: unknown actor (known: {', '.join(ACTORS)})")
            if not 0.01 <= value <= 3600:
                raise ValueError(f"loop_s.{name}: {value} outside 0.01..3600 seconds")
        return self

    @model_validator(mode="after")
    def _tradable_symbols(self) -> Settings:
        for symbol in self.symbols:
            if not re.fullmatch(r"[A-Z0-9]{2,24}", symbol):
                raise ValueError(f"symbols: {symbol!r} is not a symbol like BTCUSDT")
            if self.mode == "SIM" and symbol not in self.paper.instruments:
                raise ValueError(f"paper.instruments: no instrument for symbol {symbol}")
        return self

    @model_validator(mode="after")
    def _mode_has_its_venue(self) -> Settings:
        ex = self.exchange
        if self.mode == "SIM" and ex.adapter != "paper":
            raise ValueError('exchange.adapter: mode SIM trades on the paper exchange (adapter = "paper"); '
                             'for venue prices use mode = "DRY_RUN", for venue orders mode = "LIVE"')
        if self.mode in ("DRY_RUN", "LIVE") and ex.adapter == "paper":
            raise ValueError(f'exchange.adapter: mode {self.mode} needs a venue (adapter = "binance_usdm")')
        if self.mode == "LIVE" and ex.network == "mainnet" and not ex.confirm_mainnet:
            raise ValueError("exchange.confirm_mainnet: LIVE on mainnet places real orders with real money; "
                             "set confirm_mainnet = true to mean it")
        return self

    @property
    def network(self) -> str:
        """Where orders go: "paper" in SIM and DRY_RUN (the paper engine fills them), else the venue's."""
        return "paper" if self.mode != "LIVE" else self.exchange.network

    # --- derived paths ---------------------------------------------------------------------------

    @model_validator(mode="after")
    def _mirror_outside_state(self) -> Settings:
        # The mirror is written by sync; inside the state directory it would be a second writer
        # of logs/state (and the state writer would see files it never wrote).
        state = self.state_path.resolve()
        mirror = self.mirror_path.resolve()
        if mirror == state or state in mirror.parents:
            raise ValueError(f"mirror_dir: {self.mirror_path} is, or lies inside, the state directory {state}")
        return self

    @property
    def state_path(self) -> Path:
        return self.state_dir or self.home / "logs" / "state"

    @property
    def journal_path(self) -> Path:
        return self.journal_dir or self.home / "logs" / "journal"

    @property
    def run_path(self) -> Path:
        return self.run_dir or self.home / "run"

    @property
    def var_path(self) -> Path:
        return self.var_dir or self.home / "var"

    @property
    def mirror_path(self) -> Path:
        return self.mirror_dir or self.home / "var" / "mirror"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'logs' / 'positions.db'}"

    @property
    def ingest_endpoint(self) -> str:
        return self.bus.ingest or f"ipc://{self.run_path / 'ingest.sock'}"

    @property
    def updates_endpoint(self) -> str:
        return self.bus.updates or f"ipc://{self.run_path / 'updates.sock'}"

    @property
    def snapshot_endpoint(self) -> str:
        return self.bus.snapshot or f"ipc://{self.run_path / 'snapshot.sock'}"

    @property
    def exchange_endpoint(self) -> str:
        return self.exchange.endpoint or f"ipc://{self.run_path / 'exchange.sock'}"

    @property
    def exchange_stream_endpoint(self) -> str:
        return self.exchange.stream_endpoint or f"ipc://{self.run_path / 'exchange-stream.sock'}"

    def metrics_port(self, actor: str) -> int:
        return self.port_base + ACTORS.index(actor)

    def loop_interval(self, actor: str, default: float) -> float:
        return self.loop_s.get(actor, default)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


# Variables with the V7_ prefix that are not settings: the instance's paths and the venue's API
# keys. The keys are read by the exchange gateway alone (exchange/binance_usdm/credentials.py) and
# must never enter Settings, which is logged and dumped freely.
NOT_SETTINGS = frozenset({"V7_HOME", "V7_CONFIG", "V7_EXCHANGE_API_KEY", "V7_EXCHANGE_API_SECRET"})


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """`V7_WRITER__TICK_MS=50` -> {"writer": {"tick_ms": "50"}} (pydantic coerces the string)."""
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("V7_") or name in NOT_SETTINGS or name.startswith("V7_TEST"):
            continue
        parts = name[3:].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value.split(",") if parts[-1] == "symbols" else value
    return out


def format_validation_error(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors(include_url=False):
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    sources: list[str] = []
    candidates = [REPO_CONFIG_DIR / "runtime.toml"]
    home = env.get("V7_HOME")
    if home:
        candidates.append(Path(home) / "runtime.toml")
    if env.get("V7_CONFIG"):
        candidates.append(Path(env["V7_CONFIG"]))
    for path in candidates:
        if path.is_file():
            data = _deep_merge(data, _read_toml(path))
            sources.append(str(path))
    if home:
        data["home"] = home
    overrides = _env_overrides(env)
    if overrides:
        data = _deep_merge(data, overrides)
        sources.append("environment (V7_*)")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(" + ".join(sources) or "defaults", exc)) from None
    return settings.model_copy(update={"home": settings.home.resolve()})
