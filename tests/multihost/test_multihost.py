"""Multi-host: the hub on one host, the trading actors on another, the link between them cut.

Two network namespaces stand for two hosts (tests/multihost/netns.py), each with its own
V7_HOME and its own supervisord running the repository's supervisord.conf, as
docs/operations.md ("Scale out") sets them up:

- hub host: state writer, diagnostics, dashboard; the positions store on PostgreSQL over TCP
  (V7_TEST_PG_URL, through a relay on the hub host's link to the database host; a schema of
  its own, dropped after), or SQLite in its V7_HOME when the variable is unset;
- actor host: exchange gateway (paper), executor, router, exit scanner, sync, plus the chaos
  load (more senders, each with an ACK ledger), a recording subscriber and a metrics probe.

The hub's endpoints are TCP on the link with CURVE and an allow-list of two client keys made
with `v7 keys new` (one per host, each naming the programs its host runs); a key outside the
list and a plaintext client, from the actor host, get no answer.

Under trading load the link is cut (packets silently dropped both ways), flapped (the actor
host's interface down and up), and cut again while the hub is killed -9 (supervisord restarts
it while the actors cannot see it). After each fault the test does nothing but restore the
link, and measures the time until the group is healthy again:
- every actor on the actor host: sender connected, subscriber in sync, not reporting the hub
  unreachable or itself degraded, outbox drained (from their metrics);
- the hub host's diagnostics: every one of them live again, status running
  (runtime_diagnostics.json, what the dashboard's liveness card shows).

Pass means, besides recovering by themselves within the bound:
- during a cut every actor reported itself degraded (metrics), the hub host's diagnostics
  marked each stale, and the journal holds each actor's "hub unreachable" heartbeats;
- every message a load sender saw ACKed is in the journal at the seq its ACK named; nothing
  NACKed or unanswered; the journal gap-free with no message in it twice;
- the recording subscriber gap-free between its snapshots and ending at the journal's end;
- every fill the paper exchange made is in the journal exactly once, and no intent was filled
  beyond its quantity (an order placed twice would show as one);
- the positions store equals what the committed fills add up to, for every account.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

from actors.state_writer.store.tables import OpenPositionRow
from bus.messages import Heartbeat, OrderFilled, RequestExit, SubmitOrder
from cli.ops import supervisor_proxy
from tests.chaos.audit import ack_violations, journal_violations, net_of_fills, subscriber_violations
from tests.chaos.procs import helper_processes, spawn
from tests.harness import REPO, Instance, free_port_base
from tests.multihost import netns
from tests.pg import pg_schema, pg_url
from tests.store.helpers import table
from tests.supervised import supervised
from tests.trading.group import Committed, committed, configure_fast

V7_BIN = REPO / ".venv" / "bin" / "v7"
HUB_PROGRAMS = ("state_writer", "diagnostics", "dashboard")
ACT_PROGRAMS = ("exchange", "executor", "router", "exit_scanner", "sync")
SUBSCRIBERS = ("executor", "router", "exit_scanner", "sync")  # the exchange gateway only sends
PORTS = {"ingest": 7101, "updates": 7102, "snapshot": 7103}  # on the hub's address, in its namespace
RELAY_PORT = 15432
# An outbox at or below this is drained: steady trading keeps a few dozen in flight on a busy
# machine, a cut leaves hundreds to thousands.
HEALTHY_OUTBOX = 100


@dataclass(frozen=True)
class Plan:
    partition_s: float  # a plain cut (0: none)
    flaps: int
    flap_down_s: float
    flap_up_s: float
    kill_cut_s: float  # a cut during which the hub is killed -9
    fast: bool  # shorter heartbeats and timeouts, so a short test sees every stage
    senders: int
    rate: float
    recovery_bound_s: float


@dataclass
class Report:
    store: str = ""
    recoveries: dict[str, float] = field(default_factory=dict)  # fault -> seconds from restore to healthy
    noticed: dict[str, float] = field(default_factory=dict)  # fault -> seconds from cut to all degraded
    phases: dict[str, float] = field(default_factory=dict)  # seconds since the start, at the end of each
    journal_messages: int = 0
    load_acked: int = 0
    exchange_fills: int = 0
    subscriber_updates: int = 0
    subscriber_snapshots: int = 0
    degraded_heartbeats: dict[str, int] = field(default_factory=dict)
    open_positions: int = 0
    violations: list[str] = field(default_factory=list)


def test_multihost_short(tmp_path: Path) -> None:
    """`make test`: one flap and a cut with the hub killed -9 during it (fast heartbeats)."""
    report = _run(tmp_path, Plan(partition_s=0, flaps=1, flap_down_s=3.0, flap_up_s=1.0, kill_cut_s=6.0, fast=True,
                                 senders=2, rate=15, recovery_bound_s=30))
    _print(report)
    assert not report.violations, report.violations[:20]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_multihost_long(tmp_path: Path) -> None:
    """`make chaos`: a 30 s cut, five flaps, a 15 s cut with the hub killed -9; default timings."""
    report = _run(tmp_path, Plan(partition_s=30, flaps=5, flap_down_s=3.0, flap_up_s=4.0, kill_cut_s=15.0,
                                 fast=False, senders=3, rate=25, recovery_bound_s=60))
    _print(report)
    assert not report.violations, report.violations[:20]


def _print(report: Report) -> None:
    counts = {k: v for k, v in asdict(report).items() if k != "violations"}
    print(f"\nmultihost report: {json.dumps(counts)} violations={len(report.violations)}")


# --- set-up ----------------------------------------------------------------------------------------------


def _keys(tmp_path: Path) -> tuple[Path, Path]:
    """The hub's pair and one pair per host, as docs/security.md makes them; the allow-list holds
    the two hosts' public keys."""
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    allowed.mkdir(parents=True)
    for name, producers in (("hub", ""), ("hub-host", "diagnostics,dashboard"),
                            ("act-host", ",".join(ACT_PROGRAMS))):
        cmd = [str(V7_BIN), "keys", "new", name, "--dir", str(keys)]
        result = _check(cmd + (["--producers", producers] if producers else []))
        assert result.returncode == 0, result.stderr
    for name in ("hub-host", "act-host"):
        shutil.copy(keys / f"{name}.key", allowed / f"{name}.key")
    return keys, allowed


def _check(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO, check=False)


def _host(home: Path, net: netns.TwoHosts, keys: Path, *, client_key: str, top: str = "", server: str = "",
          fast: bool) -> Instance:
    inst = Instance(home=home, port_base=free_port_base())
    configure_fast(inst)  # fast paper trading; the journal is never compacted, so it can be audited
    endpoints = "".join(f'{name} = "tcp://{net.hub_addr}:{port}"\n' for name, port in PORTS.items())
    timing = "heartbeat_s = 0.5\ntcp_heartbeat_timeout_s = 2.0\ntcp_connect_timeout_s = 1.0\n" if fast else ""
    inst.write_config(
        top + inst.extra_toml + "\n[bus]\n" + endpoints + server + timing
        + f'curve_server_public_cert = "{keys / "hub.key"}"\n'
        + f'curve_client_cert = "{keys / f"{client_key}.key_secret"}"\n'
    )
    return inst


@contextlib.contextmanager
def _store() -> Iterator[tuple[str | None, str | None]]:
    """(PostgreSQL URL, schema), or (None, None) for SQLite when V7_TEST_PG_URL is unset; the schema
    is dropped after."""
    if not os.environ.get("V7_TEST_PG_URL"):
        yield None, None
        return
    url = pg_url()
    with pg_schema(url) as schema:
        yield url, schema


# --- what the test watches -------------------------------------------------------------------------------


class Watch:
    """What the actor host's metrics probe and the hub host's diagnostics say, read from their files."""

    def __init__(self, probe_file: Path, diag_file: Path) -> None:
        self.probe_file = probe_file
        self.diag_file = diag_file
        self.lines: list[dict[str, Any]] = []
        self._offset = 0

    def _read(self) -> None:
        if not self.probe_file.exists():
            return
        with self.probe_file.open() as fh:
            fh.seek(self._offset)
            for line in fh:
                if not line.endswith("\n"):
                    break  # being written: read it next time
                self._offset += len(line)
                self.lines.append(json.loads(line))

    def latest(self) -> dict[str, Any] | None:
        self._read()
        return self.lines[-1] if self.lines else None

    def actors_live(self) -> dict[str, dict[str, Any]]:
        """The hub host's diagnostics about the actor host's programs ({} before the first file)."""
        try:
            doc = json.loads(self.diag_file.read_text())
        except (OSError, ValueError):
            return {}
        actors = doc.get("runtime_diagnostics", {}).get("actors", {})
        return {name: actors.get(name, {}) for name in ACT_PROGRAMS}

    def all_degraded(self) -> bool:
        line = self.latest()
        if line is None:
            return False
        samples = line["actors"]
        probe_ok = all(s is not None and s.get("v7_actor_degraded") == 1 and s.get("v7_actor_hub_unreachable") == 1
                       for s in samples.values())
        live = self.actors_live()
        return probe_ok and bool(live) and all(a.get("stale") is True for a in live.values())

    def healthy(self, since: float) -> bool:
        line = self.latest()
        if line is None or line["t"] < since:
            return False
        for name, s in line["actors"].items():
            if s is None or s.get("v7_actor_degraded") != 0 or s.get("v7_actor_hub_unreachable") != 0:
                return False
            if s.get("v7_sender_connected") != 1 or s.get("v7_sender_outbox_depth", 1e9) > HEALTHY_OUTBOX:
                return False
            if name in SUBSCRIBERS and s.get("v7_actor_hub_synced") != 1:
                return False
        live = self.actors_live()
        return bool(live) and all(a.get("stale") is False and a.get("status") == "running" for a in live.values())

    def degraded_seen(self, start: float, end: float) -> set[str]:
        """Actors the probe saw reporting degraded (hub unreachable) between start and end."""
        self._read()
        return {name for line in self.lines if start <= line["t"] <= end
                for name, s in line["actors"].items()
                if s is not None and s.get("v7_actor_degraded") == 1 and s.get("v7_actor_hub_unreachable") == 1}


def _wait(predicate: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str]) -> float:
    """Poll until `predicate` holds; returns the wall time it first did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.time()
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs()}")


# --- the run ---------------------------------------------------------------------------------------------


def _run(tmp_path: Path, plan: Plan) -> Report:
    if not V7_BIN.exists():
        pytest.skip(f"{V7_BIN} missing: supervisord.conf runs the repository's own .venv (make venv)")
    reason = netns.problem()
    if reason:
        pytest.skip(f"multi-host test: {reason}")
    report = Report()
    t0 = time.monotonic()
    keys, allowed = _keys(tmp_path)
    with netns.two_hosts() as net, _store() as (pg, schema), helper_processes() as started:
        report.store = "sqlite (V7_TEST_PG_URL unset)" if pg is None else f"postgresql, schema {schema}"
        top, server = "", (f'curve_server_cert = "{keys / "hub.key_secret"}"\n'
                           f'curve_allowed_clients_dir = "{allowed}"\n')
        schema_toml = ""
        if pg is not None:
            # The hub reaches the database host through the relay on its own link to it.
            url = make_url(pg).set(host=net.db_addr, port=RELAY_PORT)
            top = f'db_url = "{url.render_as_string(hide_password=False)}"\n'
            schema_toml = f'\n[store]\ndb_schema = "{schema}"\n'
            ready = tmp_path / "relay.ready"
            started.append(_relay(tmp_path, net, make_url(pg), ready))
            _wait(ready.exists, 20, "the PostgreSQL relay to listen", lambda: "")
        hub = _host(tmp_path / "hub-host", net, keys, client_key="hub-host", top=top, server=server, fast=plan.fast)
        if schema_toml:
            hub.write_config(hub.extra_toml + schema_toml)
        act = _host(tmp_path / "act-host", net, keys, client_key="act-host", fast=plan.fast)
        in_hub, in_act = tuple(net.prefix(net.hub_ns)), tuple(net.prefix(net.act_ns))

        def logs() -> str:
            parts = []
            for inst, names in ((hub, HUB_PROGRAMS), (act, ACT_PROGRAMS)):
                for name in names:
                    path = inst.home / "logs" / "supervisor" / f"{name}.log"
                    if path.exists():
                        parts.append(f"--- {name} ---\n{path.read_text(errors='replace')[-1500:]}")
            return "\n".join(parts)

        out = act.home / "multihost"
        out.mkdir()
        stop_load, stop_watch = out / "stop-load", out / "stop-watch"
        with supervised(hub, HUB_PROGRAMS, prefix=in_hub), supervised(act, ACT_PROGRAMS, prefix=in_act):
            for inst, prefix in ((hub, in_hub), (act, in_act)):
                up = _check([*prefix, str(V7_BIN), "wait-up", "--timeout", "120"], env=inst.env, timeout=150)
                assert up.returncode == 0, up.stdout + up.stderr + logs()
            report.phases["up"] = round(time.monotonic() - t0, 1)
            targets = [f"--target={n}=127.0.0.1:{act.settings.metrics_port(n)}" for n in ACT_PROGRAMS]
            observers = [
                spawn(act, "tests.multihost.probe", *targets, "--out", str(out / "probe.jsonl"),
                      "--stop-file", str(stop_watch), prefix=in_act),
                spawn(act, "tests.chaos.watch", "--out", str(out / "watch.json"), "--stop-file", str(stop_watch),
                      prefix=in_act),
            ]
            started.extend(observers)
            # Meanwhile, across the link: a key outside the allow-list, and plaintext, are refused.
            intruder = spawn(act, "tests.multihost.intruder", "--key-dir", str(tmp_path / "intruder-keys"),
                             prefix=in_act)
            started.append(intruder)
            load = spawn(act, "tests.chaos.load", "--senders", str(plan.senders), "--rate", str(plan.rate),
                         "--seed", "5", "--out", str(out / "load.json"), "--stop-file", str(stop_load), prefix=in_act)
            started.append(load)
            watch = Watch(out / "probe.jsonl", hub.state_dir / "runtime_diagnostics.json")
            hub_rpc = supervisor_proxy(hub.settings).supervisor

            # Trading, and healthy, before any fault.
            _wait(lambda: any(isinstance(r.msg, OrderFilled) and r.msg.account == "paper" for r in committed(hub)),
                  60, "the trading group's first fill", logs)
            _wait(lambda: watch.healthy(0), 30, "the group to be healthy before the faults", logs)
            report.phases["trading"] = round(time.monotonic() - t0, 1)
            if intruder.wait(timeout=60) != 0:
                report.violations.append(f"intruder: {act.logs('intruder')[-1000:]}")

            if plan.partition_s:
                _fault(report, "partition", watch, plan, logs, cut=net.partition, heal=net.heal,
                       hold_s=plan.partition_s)
            for i in range(plan.flaps):
                net.link_down()
                time.sleep(plan.flap_down_s)  # the fault lasts this long: the time is the fault, not a guess
                net.link_up()
                if i < plan.flaps - 1:
                    time.sleep(plan.flap_up_s)
            flapped = time.time()
            if plan.flaps:
                report.recoveries["flaps"] = round(
                    _wait(lambda: watch.healthy(flapped), plan.recovery_bound_s, "recovery after the flaps", logs)
                    - flapped, 1)
            _fault(report, "partition+hub kill -9", watch, plan, logs, cut=net.partition, heal=net.heal,
                   hold_s=plan.kill_cut_s, during=lambda: _kill_hub(hub, hub_rpc, logs))

            # Quiet down: the load flushes, the actor host's programs stop (flushing their outboxes).
            stop_load.touch()
            load.wait(timeout=300)
            assert load.returncode == 0, act.logs("load")[-3000:]
            act_rpc = supervisor_proxy(act.settings).supervisor
            # The exchange last: the router cancels its resting orders as it stops, so the
            # exchange makes no fill nobody is left to report.
            for name in ("executor", "exit_scanner", "sync", "router", "exchange"):
                act_rpc.stopProcess(f"v7:{name}", True)
            # Diagnostics and the dashboard publish on their own (every few seconds): stopped too,
            # the journal can settle.
            hub_rpc.stopProcessGroup("v7", True)
            report.phases["quiet"] = round(time.monotonic() - t0, 1)
            _wait_journal_settles(hub)
            stop_watch.touch()
            for proc in observers:
                proc.wait(timeout=60)
            report.phases["settled"] = round(time.monotonic() - t0, 1)
            _audit(report, hub, act, out, watch)
            report.phases["audited"] = round(time.monotonic() - t0, 1)
    return report


def _relay(tmp_path: Path, net: netns.TwoHosts, url: URL, ready: Path) -> subprocess.Popen:
    log = (tmp_path / "relay.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "tests.multihost.relay", "--listen", f"{net.db_addr}:{RELAY_PORT}",
                             "--to", f"{url.host}:{url.port or 5432}", "--ready-file", str(ready)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _fault(report: Report, name: str, watch: Watch, plan: Plan, logs: Callable[[], str], *,
           cut: Callable[[], None], heal: Callable[[], None], hold_s: float,
           during: Callable[[], None] | None = None) -> None:
    """Cut the link, see every actor report it, do `during`, hold the cut `hold_s`, restore, measure."""
    began = time.time()
    cut()
    noticed = _wait(watch.all_degraded, max(hold_s, 20) + 10,
                    f"{name}: every actor degraded and stale at the hub", logs)
    report.noticed[name] = round(noticed - began, 1)
    if during is not None:
        during()
    left = hold_s - (time.time() - began)
    if left > 0:
        time.sleep(left)  # the cut lasts this long: the time is the fault, not a guess
    heal()
    healed = time.time()
    back = _wait(lambda: watch.healthy(healed), plan.recovery_bound_s, f"recovery after the {name}", logs)
    report.recoveries[name] = round(back - healed, 1)
    missing = set(ACT_PROGRAMS) - watch.degraded_seen(began, healed)
    if missing:
        report.violations.append(f"{name}: {sorted(missing)} never reported degraded")


def _kill_hub(hub: Instance, rpc: Any, logs: Callable[[], str]) -> None:
    """kill -9 the state writer; supervisord restarts it, and the new one serves (its log says so)."""
    before = rpc.getProcessInfo("hub:state_writer")
    log = hub.home / "logs" / "supervisor" / "state_writer.log"
    served = log.read_text(errors="replace").count("serving at seq")
    os.kill(before["pid"], signal.SIGKILL)

    def back() -> bool:
        try:
            now = rpc.getProcessInfo("hub:state_writer")
        except (OSError, xmlrpc.client.Error):
            return False
        return (now["statename"] == "RUNNING" and now["pid"] != before["pid"]
                and log.read_text(errors="replace").count("serving at seq") > served)

    _wait(back, 60, "supervisord to restart the state writer and it to serve", logs)


def _wait_journal_settles(hub: Instance) -> None:
    """Until the journal stops growing (everything in flight committed); read from its files."""
    last, still_since = -1, time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records = committed(hub)
        seq = records[-1].seq if records else 0
        if seq != last:
            last, still_since = seq, time.monotonic()
        elif time.monotonic() - still_since > 2.0:
            return
        time.sleep(0.3)
    raise AssertionError("the journal never settled after the actor host's programs stopped")


# --- the audit -------------------------------------------------------------------------------------------


def _audit(report: Report, hub: Instance, act: Instance, out: Path, watch: Watch) -> None:
    records = committed(hub)
    report.journal_messages = len(records)
    ledgers = json.loads((out / "load.json").read_text())
    seen = json.loads((out / "watch.json").read_text())
    bad = report.violations
    bad += journal_violations(records)
    bad += ack_violations(records, ledgers)
    report.load_acked = sum(len(ledger["acked"]) for ledger in ledgers)
    sub_bad, report.subscriber_updates, report.subscriber_snapshots = subscriber_violations(records, seen)
    bad += sub_bad
    bad += _audit_exchange(records, act, report)
    bad += _audit_positions(records, hub, report)
    # Each actor's heartbeats queued during the cuts reached the journal afterwards, saying why.
    degraded: dict[str, int] = defaultdict(int)
    for r in records:
        if isinstance(r.msg, Heartbeat) and r.msg.status == "degraded" and r.msg.detail.startswith("hub unreachable"):
            degraded[r.msg.actor] += 1
    report.degraded_heartbeats = dict(sorted(degraded.items()))
    bad += [f"{name}: no 'hub unreachable' heartbeat in the journal" for name in ACT_PROGRAMS if not degraded[name]]


def _audit_exchange(records: list[Committed], act: Instance, report: Report) -> list[str]:
    """Every exchange fill in the journal exactly once; no intent filled beyond its quantity."""
    from exchange.paper.store import PaperStore

    bad = []
    store = PaperStore(act.settings.var_path / "paper_exchange" / "exchange.db")
    try:
        fills = store.fills(None, None, 10_000_000)
    finally:
        store.close()
    report.exchange_fills = len(fills)
    journal_fills = [r.msg for r in records if isinstance(r.msg, OrderFilled) and r.msg.account == "paper"]
    counts: dict[str, int] = defaultdict(int)
    for f in journal_fills:
        counts[f.trade_id] += 1
    bad += [f"fill {t} committed {n} times" for t, n in counts.items() if n > 1]
    exchange_ids = {f.trade_id for f in fills}
    if exchange_ids != set(counts):
        bad.append(f"exchange fills not in the journal: {sorted(exchange_ids - set(counts))[:5]}; "
                   f"journal fills the exchange never made: {sorted(set(counts) - exchange_ids)[:5]}")
    intents = {r.msg.intent_id: r.msg.qty for r in records if isinstance(r.msg, SubmitOrder | RequestExit)
               and r.msg.account == "paper"}
    filled: dict[str, float] = defaultdict(float)
    for f in fills:
        filled[f.client_order_id.rsplit(".", 1)[0]] += f.qty
    for intent, qty in filled.items():
        want = intents.get(intent)
        if want is None:
            bad.append(f"exchange filled {qty} for intent {intent}, which is not in the journal")
        elif qty > want * (1 + 1e-9) + 1e-12:
            bad.append(f"intent {intent}: {qty} filled for {want} asked (an order placed twice?)")
    if not fills:
        bad.append("the trading group made no fills")
    return bad


def _audit_positions(records: list[Committed], hub: Instance, report: Report) -> list[str]:
    expected = net_of_fills([r.msg for r in records if isinstance(r.msg, OrderFilled)])
    stored = {(r.mode, r.account, r.symbol): (r.side, r.qty) for r in table(hub, OpenPositionRow)}
    report.open_positions = len(stored)
    bad = []
    for key in sorted(set(expected) | set(stored)):
        want, have = expected.get(key), stored.get(key)
        if want is None or have is None or want[0] != have[0] or abs(want[1] - have[1]) > 1e-6 * max(want[1], 1):
            bad.append(f"position {key}: the committed fills add up to {want}, the store has {have}")
    return bad
