"""The one metric scraper of the test suite: fetch an actor's /metrics, parse it, read one sample.

`metric()` raises KeyError for a metric that is not exposed (a renamed metric must not read as 0);
pass `default=` where absence is legitimate (a labelled counter never incremented).
`parse`/`fetch` take no Instance, so tests/multihost/probe.py (run inside a network namespace) uses them too.
"""

from __future__ import annotations

import urllib.request
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from tests.harness import Instance

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
_ABSENT: Any = object()


def metrics_url(inst: Instance, actor: str) -> str:
    settings = inst.settings
    return f"http://{settings.metrics_host}:{settings.metrics_port(actor)}/metrics"


def fetch(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


def metrics_text(inst: Instance, actor: str) -> str:
    """The actor's exposition text as served."""
    return fetch(metrics_url(inst, actor))


def parse(text: str) -> Samples:
    """Every sample of an exposition text: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def scrape(inst: Instance, actor: str = "state_writer") -> Samples:
    """Every sample of the actor's metrics endpoint: (name, sorted labels) -> value."""
    return parse(metrics_text(inst, actor))


def metric(inst: Instance, name: str, default: Any = _ABSENT, *, at: str = "state_writer", **labels: str) -> Any:
    """The sum of the samples named `name` whose labels include `labels`, read from actor `at`.
    None exposed raises KeyError unless `default=` is given (then `default` is returned as is)."""
    total, found = 0.0, False
    for (sample_name, sample_labels), value in scrape(inst, at).items():
        have = dict(sample_labels)
        if sample_name == name and all(have.get(k) == v for k, v in labels.items()):
            total += value
            found = True
    if not found:
        if default is _ABSENT:
            raise KeyError(f"metric {name}{labels or ''} not exposed by {at}")
        return default
    return total
