"""The Alertmanager configuration that takes v7's alerts (config/prometheus/rules.yml) to a person.

Rendered as text, like the scrape config, so the shipped file can carry commented receivers with
their exact keys. Written by `v7 prometheus-config --alertmanager-out FILE`; the shipped
config/prometheus/alertmanager.yml is the output for the defaults. Keys are those Alertmanager
0.25 accepts (Debian 12's prometheus-alertmanager): `amtool check-config` validates the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:5001/v7"

# Alerts that follow from the hub being down: every actor's heartbeats stop reaching it, so the
# diagnostics actor flags them stale and idle, the writer's own target is down, lag cannot be
# measured. While V7HubDown fires, these would only bury the one message that matters.
HUB_DOWN_CONSEQUENCES = ("V7ActorDown", "V7ActorStale", "V7ActorIdle", "V7SubscriberLagging", "V7WriterNotAcking")


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid ones): '#' in a channel, ':' in a URL stay literal."""
    return json.dumps(value)


@dataclass(frozen=True)
class Timing:
    """Route timers. Production values by default; the tests use seconds to finish quickly.

    Critical alerts go out sooner (wait), report changes sooner (interval: the resolution of a
    hub outage arrives within a minute, not five) and repeat hourly until resolved.
    """

    critical_wait: str = "10s"
    critical_interval: str = "1m"
    critical_repeat: str = "1h"
    warning_wait: str = "30s"
    warning_interval: str = "5m"
    warning_repeat: str = "12h"


@dataclass(frozen=True)
class Telegram:
    chat_id: int
    # Inline because Alertmanager 0.25 has no bot_token_file (0.26 does); the file is written 0600.
    bot_token: str


@dataclass(frozen=True)
class Slack:
    api_url_file: str  # a file holding the incoming-webhook URL, which is the secret
    channel: str | None = None


@dataclass(frozen=True)
class Email:
    to: str
    sender: str
    smarthost: str
    auth_username: str | None = None
    auth_password_file: str | None = None


@dataclass(frozen=True)
class Delivery:
    """Where alerts go: the local webhook always, plus whichever integrations are configured."""

    webhook_url: str = DEFAULT_WEBHOOK_URL
    telegram: Telegram | None = None
    slack: Slack | None = None
    email: Email | None = None
    timing: Timing = field(default_factory=Timing)

    @property
    def has_secret(self) -> bool:
        return self.telegram is not None


# Shown, commented out, for integrations not configured: the exact keys with placeholder values.
EXAMPLE_TELEGRAM = Telegram(chat_id=-1001234567890, bot_token="123456789:AAE-token-from-BotFather")
EXAMPLE_SLACK = Slack(api_url_file="/etc/alertmanager/slack_webhook_url", channel="#v7-alerts")
EXAMPLE_EMAIL = Email(to="oncall@example.com", sender="v7-alerts@example.com", smarthost="smtp.example.com:587",
                      auth_username="v7-alerts@example.com", auth_password_file="/etc/alertmanager/smtp_password")


def _webhook(url: str) -> list[str]:
    return ["webhook_configs:", f"  - url: {_q(url)}", "    send_resolved: true"]


def _telegram(t: Telegram) -> list[str]:
    # parse_mode HTML and the default message template; chat_id is a number (negative for groups).
    return ["telegram_configs:", f"  - bot_token: {_q(t.bot_token)}", f"    chat_id: {t.chat_id}",
            "    parse_mode: HTML", "    send_resolved: true"]


def _slack(s: Slack) -> list[str]:
    lines = ["slack_configs:", f"  - api_url_file: {_q(s.api_url_file)}"]
    if s.channel:
        lines.append(f"    channel: {_q(s.channel)}")
    # Slack's default text is empty; the summaries are what a person reads.
    lines += ["    title: '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}'",
              "    text: '{{ range .Alerts }}{{ .Annotations.summary }}{{ \"\\n\" }}{{ end }}'",
              "    send_resolved: true"]
    return lines


def _email(e: Email) -> list[str]:
    lines = ["email_configs:", f"  - to: {_q(e.to)}", f"    from: {_q(e.sender)}", f"    smarthost: {_q(e.smarthost)}"]
    if e.auth_username:
        lines.append(f"    auth_username: {_q(e.auth_username)}")
    if e.auth_password_file:
        lines.append(f"    auth_password_file: {_q(e.auth_password_file)}")
    lines += ["    require_tls: true", "    send_resolved: true"]
    return lines


def _integration(active: list[str] | None, example: list[str], indent: str) -> list[str]:
    if active is not None:
        return [indent + line for line in active]
    return [f"{indent}# {line}" for line in example]


def _receiver(name: str, d: Delivery, telegram: bool) -> list[str]:
    ind = "    "
    lines = [f"  - name: {name}", *(ind + line for line in _webhook(d.webhook_url))]
    if telegram:
        lines += _integration(_telegram(d.telegram) if d.telegram else None, _telegram(EXAMPLE_TELEGRAM), ind)
    lines += _integration(_slack(d.slack) if d.slack else None, _slack(EXAMPLE_SLACK), ind)
    lines += _integration(_email(d.email) if d.email else None, _email(EXAMPLE_EMAIL), ind)
    return lines


def render_alertmanager_config(delivery: Delivery | None = None) -> str:
    d = delivery or Delivery()
    t = d.timing
    consequences = "|".join(HUB_DOWN_CONSEQUENCES)
    lines = [
        "# Alertmanager config for v7 (generated by `v7 prometheus-config --alertmanager-out FILE`).",
        "# Check: amtool check-config FILE. Receivers: docs/operations.md, \"Alert delivery\".",
        "# Routing: critical alerts go to v7-critical (Telegram there: the phone buzzes for what needs a person",
        "# now), warnings to v7-warning; both also post to the local webhook, as does anything else (v7-webhook).",
        "route:",
        "  receiver: v7-webhook",
        "  # One message per alert name: eight stale actors are one notification, not eight.",
        "  group_by: [alertname]",
        f"  group_wait: {t.warning_wait}",
        f"  group_interval: {t.warning_interval}",
        f"  repeat_interval: {t.warning_repeat}",
        "  routes:",
        "    - receiver: v7-critical",
        "      matchers:",
        '        - severity = "critical"',
        f"      group_wait: {t.critical_wait}",
        f"      group_interval: {t.critical_interval}",
        f"      repeat_interval: {t.critical_repeat}",
        "    - receiver: v7-warning",
        "      matchers:",
        '        - severity = "warning"',
        "inhibit_rules:",
        "  # The hub down makes every actor look stale, idle, lagging: while it fires, send only it.",
        "  - source_matchers:",
        '      - alertname = "V7HubDown"',
        "    target_matchers:",
        f'      - alertname =~ "{consequences}"',
        "receivers:",
        "  - name: v7-webhook",
        *("    " + line for line in _webhook(d.webhook_url)),
        *_receiver("v7-critical", d, telegram=True),
        *_receiver("v7-warning", d, telegram=False),
    ]
    return "\n".join(lines) + "\n"
