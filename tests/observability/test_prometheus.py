"""Observability that a real Prometheus accepts: promtool on every endpoint, a real server
scraping a running group, the shipped scrape config, rules and Grafana dashboard."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cli.prometheus import RULES_FILE, render_scrape_config
from config.settings import ACTORS, REPO_CONFIG_DIR, REPO_ROOT, Settings
from tests.harness import Instance
from tests.observability.servers import (
    PROMTOOL,
    get,
    needs_prometheus,
    needs_promtool,
    prometheus,
    query,
    wait_metrics_endpoints,
)
from tests.support.metrics import metrics_url

DASHBOARD = REPO_ROOT / "docs" / "grafana" / "v7_dashboard.json"

# Series that must exist once the group runs, with the actor that exports them.
KEY_SERIES = {
    "v7_writer_seq": "state_writer",
    "v7_writer_journal_fsync_seconds_count": "state_writer",
    "v7_paper_wallet_balance": "exchange",
    "v7_executor_nav": "executor",
    "v7_executor_signals_total": "executor",
    "v7_router_active_intents": "router",
    "v7_exit_scans_total": "exit_scanner",
    "v7_sync_nav": "sync",
    "v7_sync_peak_nav": "sync",
    "v7_diag_idle": "diagnostics",
    "v7_diag_heartbeat_age_seconds": "diagnostics",
}


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dash["panels"] for t in panel["targets"]]


def test_shipped_scrape_config_matches_the_generator() -> None:
    shipped = (REPO_CONFIG_DIR / "prometheus" / "prometheus.yml").read_text()
    assert shipped == render_scrape_config(Settings(), "5s", Path("rules.yml")), (
        "config/prometheus/prometheus.yml is stale: regenerate with "
        "`v7 prometheus-config --rules rules.yml > config/prometheus/prometheus.yml`"
    )


@needs_promtool
def test_rules_and_scrape_config_pass_promtool() -> None:
    rules = subprocess.run([PROMTOOL, "check", "rules", str(RULES_FILE)], check=False, capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run([PROMTOOL, "check", "config", "prometheus.yml"], check=False, capture_output=True,
                            text=True, cwd=REPO_CONFIG_DIR / "prometheus")
    assert config.returncode == 0, config.stdout + config.stderr


def test_grafana_dashboard_is_importable_json() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["panels"]
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for needed in ("nav", "drawdown", "liveness", "lag", "nack"):
        assert needed in titles, needed
    assert all(expr.strip() for expr in _dashboard_exprs())


@needs_prometheus
def test_real_prometheus_scrapes_every_actor(group: Instance, tmp_path: Path) -> None:
    settings = group.settings
    wait_metrics_endpoints(group)
    # The series that only appear after some work (a loop, a NAV sample, a diagnostics pass).
    group.wait_for(lambda: b"v7_diag_idle{" in get(metrics_url(group, "diagnostics")), 60, "diagnostics gauges")
    group.wait_for(lambda: b"v7_sync_nav " in get(metrics_url(group, "sync")), 60, "a NAV sample")

    for actor in ACTORS:
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=get(metrics_url(group, actor)),
                              capture_output=True, check=False)
        assert lint.returncode == 0, f"{actor}: {lint.stdout.decode()}{lint.stderr.decode()}"

    config = tmp_path / "prometheus.yml"
    # No Alertmanager: alert delivery has its own test (test_alerting.py).
    config.write_text(render_scrape_config(settings, "1s", RULES_FILE, alertmanager=None))
    with prometheus(config, tmp_path) as base:
        def targets_up() -> bool:
            try:
                targets = json.loads(get(f"{base}/api/v1/targets"))["data"]["activeTargets"]
            except OSError:
                return False
            return len(targets) == len(ACTORS) and all(t["health"] == "up" for t in targets)

        group.wait_for(targets_up, 90, "every actor's target to be up in Prometheus")
        up = query(base, 'up{job="v7"}')["data"]["result"]
        assert sorted(r["metric"]["actor"] for r in up) == sorted(ACTORS)

        def series_present() -> list[str]:
            missing = []
            for name, actor in KEY_SERIES.items():
                result = query(base, f'{name}{{actor="{actor}"}}')["data"]["result"]
                if not result:
                    missing.append(name)
            return missing

        group.wait_for(lambda: not series_present(), 60, f"key series in Prometheus ({series_present()})")
        for actor in ACTORS:
            assert query(base, f'v7_actor_up{{actor="{actor}"}}')["data"]["result"] or actor == "state_writer"
        # Every dashboard query is valid PromQL against a live server.
        for expr in _dashboard_exprs():
            answer = query(base, expr)
            assert answer["status"] == "success", (expr, answer)
        rules = json.loads(get(f"{base}/api/v1/rules"))["data"]["groups"]
        assert {g["name"] for g in rules} == {"v7-recording", "v7-alerts"}
        assert all(r["health"] != "err" for g in rules for r in g["rules"]), rules
