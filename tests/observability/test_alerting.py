"""Alerts reach a person: the shipped Alertmanager config passes amtool, routes by severity,
silences what the hub being down causes, and a real Prometheus + Alertmanager deliver V7HubDown
to a local webhook when the state writer stops, then its resolution when it returns.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import signal
import stat
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cli.alertmanager import (
    EXAMPLE_EMAIL,
    EXAMPLE_SLACK,
    EXAMPLE_TELEGRAM,
    HUB_DOWN_CONSEQUENCES,
    Delivery,
    Timing,
    render_alertmanager_config,
)
from cli.main import main as v7_main
from cli.prometheus import ALERTMANAGER_FILE, RULES_FILE, render_scrape_config
from tests.harness import Instance
from tests.observability.servers import (
    AMTOOL,
    alertmanager,
    get_json,
    needs_alertmanager,
    needs_amtool,
    needs_prometheus,
    prometheus,
    query,
    wait_metrics_endpoints,
)

# Seconds, not minutes: a test sees the first notification a second after an alert fires.
FAST = Timing(critical_wait="1s", critical_interval="2s", warning_wait="1s", warning_interval="2s")
Payload = dict[str, Any]


class Webhook:
    """A local webhook receiver: every notification Alertmanager POSTs, in arrival order."""

    def __init__(self) -> None:
        inbox: queue.Queue[Payload] = queue.Queue()
        self.inbox = inbox
        self.seen: list[Payload] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                inbox.put(json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0")))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reports what matters
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v7"

    def wait(self, predicate: Callable[[Payload], bool], timeout: float, what: str) -> Payload:
        """The first notification, already received or arriving within `timeout`, that satisfies `predicate`."""
        for payload in self.seen:
            if predicate(payload):
                return payload
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                payload = self.inbox.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(payload)
            if predicate(payload):
                return payload
        got = [(p["receiver"], p["status"], alerts_named(p)) for p in self.seen]
        raise AssertionError(f"no notification with {what} within {timeout}s; received: {got}")


@contextlib.contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        thread.join(timeout=5)


def alerts_named(payload: Payload) -> list[str]:
    return [a["labels"]["alertname"] for a in payload["alerts"]]


def has_alert(name: str, status: str) -> Callable[[Payload], bool]:
    return lambda p: any(a["labels"]["alertname"] == name and a["status"] == status for a in p["alerts"])


def amtool(*args: str) -> subprocess.CompletedProcess:
    assert AMTOOL is not None
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, check=False, timeout=30)


def test_shipped_alertmanager_config_matches_the_generator() -> None:
    assert ALERTMANAGER_FILE.read_text() == render_alertmanager_config(), (
        "config/prometheus/alertmanager.yml is stale: regenerate with `v7 prometheus-config --rules rules.yml "
        "--out config/prometheus/prometheus.yml --alertmanager-out config/prometheus/alertmanager.yml`"
    )


def uncommented(config: str) -> str:
    """The shipped file with its example receivers switched on, as docs/operations.md tells operators to."""
    head, receivers = config.split("\nreceivers:\n")
    return head + "\nreceivers:\n" + re.sub(r"^(\s*)# ", r"\1", receivers, flags=re.M)


@needs_amtool
def test_alertmanager_configs_pass_amtool(tmp_path: Path) -> None:
    every = Delivery(telegram=EXAMPLE_TELEGRAM, slack=EXAMPLE_SLACK, email=EXAMPLE_EMAIL)
    shipped = ALERTMANAGER_FILE.read_text()
    assert "# telegram_configs:" in shipped and "# slack_configs:" in shipped and "# email_configs:" in shipped
    for name, text in (("shipped", shipped), ("every-receiver", render_alertmanager_config(every)),
                       ("uncommented", uncommented(shipped))):
        path = tmp_path / f"{name}.yml"
        path.write_text(text)
        result = amtool("check-config", str(path))
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
    assert "telegram_configs:" in uncommented(shipped).split("- name: v7-critical")[1]


@needs_amtool
@pytest.mark.parametrize(("labels", "receiver"), [
    (["alertname=V7HubDown", "severity=critical"], "v7-critical"),
    (["alertname=V7ReconciliationMismatch", "severity=critical"], "v7-critical"),
    (["alertname=V7ActorStale", "severity=warning", "actor=diagnostics"], "v7-warning"),
    (["alertname=SomethingElse"], "v7-webhook"),
])
def test_routes_by_severity(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_FILE}", *labels)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


@needs_alertmanager
def test_hub_down_silences_the_alerts_it_causes(tmp_path: Path) -> None:
    """Alerts posted straight to a real Alertmanager: the consequences of V7HubDown are inhibited, others are not."""
    assert {"V7ActorDown", "V7ActorStale", "V7ActorIdle", "V7SubscriberLagging"} <= set(HUB_DOWN_CONSEQUENCES)
    with webhook() as hook:
        config = tmp_path / "alertmanager.yml"
        config.write_text(render_alertmanager_config(Delivery(webhook_url=hook.url, timing=FAST)))
        with alertmanager(config, tmp_path) as base:
            alerts = [{"labels": {"alertname": "V7HubDown", "severity": "critical", "actor": "state_writer"}}]
            alerts += [{"labels": {"alertname": name, "severity": "warning", "actor": "executor"}}
                       for name in HUB_DOWN_CONSEQUENCES]
            alerts.append({"labels": {"alertname": "V7NavAnomaly", "severity": "warning", "actor": "sync"}})
            request = urllib.request.Request(f"{base}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=5) as resp:
                assert resp.status == 200

            critical = hook.wait(has_alert("V7HubDown", "firing"), 30, "V7HubDown")
            assert critical["receiver"] == "v7-critical"
            warning = hook.wait(has_alert("V7NavAnomaly", "firing"), 30, "V7NavAnomaly")
            assert warning["receiver"] == "v7-warning"
            state = {a["labels"]["alertname"]: a["status"] for a in get_json(f"{base}/api/v2/alerts")}
            for name in HUB_DOWN_CONSEQUENCES:
                assert state[name]["state"] == "suppressed" and state[name]["inhibitedBy"], (name, state[name])
            assert state["V7NavAnomaly"]["state"] == "active"
            # Two group_intervals more: a suppressed alert would have been flushed by now.
            time.sleep(5)
            while not hook.inbox.empty():
                hook.seen.append(hook.inbox.get())
            delivered = {name for p in hook.seen for name in alerts_named(p)}
            assert delivered == {"V7HubDown", "V7NavAnomaly"}, delivered


def test_cli_writes_the_alertmanager_config_with_receivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("V7_HOME", str(tmp_path))
    token = tmp_path / "bot_token"
    token.write_text("123456789:secret-token\n")
    out, am = tmp_path / "prometheus.yml", tmp_path / "alertmanager.yml"
    assert v7_main(["prometheus-config", "--out", str(out), "--alertmanager", "127.0.0.1:19093",
                    "--alertmanager-out", str(am), "--webhook-url", "http://127.0.0.1:5999/hook",
                    "--telegram-chat-id", "-10042", "--telegram-bot-token-file", str(token)]) == 0
    assert "targets: ['127.0.0.1:19093']" in out.read_text()
    text = am.read_text()
    assert '- url: "http://127.0.0.1:5999/hook"' in text
    assert '- bot_token: "123456789:secret-token"' in text and "chat_id: -100042" not in text
    assert "chat_id: -10042" in text and "# telegram_configs:" not in text
    assert stat.S_IMODE(am.stat().st_mode) == 0o600, "the file holds the bot token"
    # A receiver without what it needs is refused, naming the missing option.
    assert v7_main(["prometheus-config", "--alertmanager-out", str(am), "--telegram-chat-id", "-1"]) == 2
    assert v7_main(["prometheus-config", "--alertmanager", "", "--out", str(out)]) == 0
    assert "alerting:" not in out.read_text()


@needs_prometheus
@needs_alertmanager
def test_hub_down_reaches_the_webhook_and_so_does_its_resolution(group: Instance, tmp_path: Path) -> None:
    wait_metrics_endpoints(group)
    with webhook() as hook:
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(render_alertmanager_config(Delivery(webhook_url=hook.url, timing=FAST)))
        with alertmanager(am_config, tmp_path) as am_base:
            prom_config = tmp_path / "prometheus.yml"
            prom_config.write_text(render_scrape_config(group.settings, "1s", RULES_FILE,
                                                        alertmanager=am_base.removeprefix("http://")))
            with prometheus(prom_config, tmp_path) as prom_base:
                def writer_scraped() -> bool:
                    result = query(prom_base, 'up{actor="state_writer"}')["data"]["result"]
                    return bool(result) and result[0]["value"][1] == "1"

                group.wait_for(writer_scraped, 60, "Prometheus to scrape the state writer")
                group.wait_for(lambda: bool(get_json(f"{prom_base}/api/v1/alertmanagers")["data"]
                                            ["activeAlertmanagers"]), 30, "Prometheus to know the Alertmanager")

                stopped = time.monotonic()
                group.kill("state_writer", signal.SIGTERM, wait=30)
                # `for: 30s` in rules.yml, then one scrape, one evaluation and group_wait.
                firing = hook.wait(has_alert("V7HubDown", "firing"), 90, "V7HubDown firing")
                fired_after = time.monotonic() - stopped
                assert firing["receiver"] == "v7-critical"
                hub = next(a for a in firing["alerts"] if a["labels"]["alertname"] == "V7HubDown")
                assert hub["labels"]["severity"] == "critical" and hub["annotations"]["summary"]

                # Hub down: the diagnostics actor sees no heartbeats and flags every actor stale. Those
                # alerts reach the Alertmanager and stay there, inhibited.
                stale_url = f"{am_base}/api/v2/alerts?" + urllib.parse.urlencode({"filter": 'alertname="V7ActorStale"'})
                group.wait_for(lambda: bool(get_json(stale_url)), 60, "V7ActorStale to fire while the hub is down")
                time.sleep(3)  # a group_wait and a group_interval: time for a notification that should not be
                stale = get_json(stale_url)
                assert all(a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"] for a in stale), stale
                while not hook.inbox.empty():
                    hook.seen.append(hook.inbox.get())
                leaked = {name for p in hook.seen for a in p["alerts"] if (name := a["labels"]["alertname"])
                          in HUB_DOWN_CONSEQUENCES and a["status"] == "firing"}
                assert not leaked, f"delivered while the hub was down, though it caused them: {leaked}"

                restarted = time.monotonic()
                group.start("state_writer")
                resolved = hook.wait(has_alert("V7HubDown", "resolved"), 60, "V7HubDown resolved")
                resolved_after = time.monotonic() - restarted
                assert resolved["receiver"] == "v7-critical"
    print(f"V7HubDown delivered {fired_after:.1f}s after the writer stopped, "
          f"resolved {resolved_after:.1f}s after it restarted")
