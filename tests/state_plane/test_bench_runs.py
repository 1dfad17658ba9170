"""The benchmarks drive the writer's own commit path; this keeps them from rotting between bench runs."""

from __future__ import annotations

from pathlib import Path

from actors.state_writer.journal import Journal
from bench.scale import _home, make_journal


def test_scale_bench_commits_through_the_writers_commit_path(tmp_path: Path) -> None:
    settings = _home(tmp_path, snapshots=False)
    assert make_journal(settings, 500) > 0
    records = list(Journal(settings.journal_path).records())
    assert [r.seq for r in records] == list(range(1, 501))
