"""The venue alerts of config/prometheus/rules.yml, evaluated by promtool's rule unit tests on
series shaped like the gateway's (v7_venue_banned, v7_venue_stream_connected{stream})."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.harness import REPO
from tests.observability.servers import PROMTOOL, needs_promtool

RULES = REPO / "config" / "prometheus" / "rules.yml"


def annotations(alert: str, **labels: str) -> str:
    """The alert's annotations as the rules file has them (YAML flow mapping), templates expanded."""
    block = RULES.read_text().split(f"- alert: {alert}\n", 1)[1].split("- alert:", 1)[0]
    found = dict(re.findall(r"^\s+(summary|description): (.+)$", block, re.M))
    text = ", ".join(f"{key}: {value}" for key, value in found.items())
    for name, value in labels.items():
        text = text.replace(f"{{{{ $labels.{name} }}}}", value)
    return "{" + text + "}"


BANNED_ANNOTATIONS = annotations("V7VenueBanned")
STREAM_ANNOTATIONS = annotations("V7VenueStreamDown", stream="user")

CASES = f"""
rule_files: [{RULES}]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'v7_venue_banned{{actor="exchange", job="v7"}}'
        values: '0 0 1 1 1 0'
      - series: 'v7_venue_stream_connected{{actor="exchange", job="v7", stream="user"}}'
        values: '1 0 0 0 0 0 0 0 1'
      - series: 'v7_venue_stream_connected{{actor="exchange", job="v7", stream="market"}}'
        values: '1 1 1 1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 15s
        alertname: V7VenueBanned
        exp_alerts: []
      - eval_time: 30s             # at once: a ban stops every order, no grace period
        alertname: V7VenueBanned
        exp_alerts:
          - exp_labels: {{severity: critical, actor: exchange, job: v7}}
            exp_annotations: {BANNED_ANNOTATIONS}
      - eval_time: 75s
        alertname: V7VenueBanned
        exp_alerts: []
      - eval_time: 45s             # down for 30 s: reconnecting, not yet an alert
        alertname: V7VenueStreamDown
        exp_alerts: []
      - eval_time: 90s             # down for 75 s
        alertname: V7VenueStreamDown
        exp_alerts:
          - exp_labels: {{severity: critical, actor: exchange, job: v7, stream: user}}
            exp_annotations: {STREAM_ANNOTATIONS}
      - eval_time: 120s
        alertname: V7VenueStreamDown
        exp_alerts: []
"""


@needs_promtool
def test_venue_alerts_fire_on_a_ban_at_once_and_on_a_stream_down_for_a_minute(tmp_path: Path) -> None:
    cases = tmp_path / "venue_alerts_test.yml"
    cases.write_text(CASES)
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "test", "rules", str(cases)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
