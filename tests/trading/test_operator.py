"""The operator's safety switches against a running paper group: `v7 halt` stops entries at once
(exits go on), `v7 flatten` leaves the exchange flat through journaled reduce-only intents,
`v7 resume` lets entries open again. Each switch is a journaled command naming its operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bus.messages import EntryVetoed, HaltEntries, ResumeEntries, SubmitOrder
from exchange.client import RpcExchange
from tests.harness import Instance, instance
from tests.trading.group import committed, configure_fast, of_type, start_group


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with instance(tmp_path_factory.mktemp("operator")) as inst:
        configure_fast(inst)
        start_group(inst)
        yield inst


def test_halt_flatten_resume(group: Instance) -> None:
    exchange = RpcExchange(group.settings, timeout_s=10)
    try:
        group.wait_for(lambda: exchange.fetch_positions() != [], 120, "a position to open")
        result = group.run_cli("halt", "--reason", "test halt", "--operator", "tester")
        assert result.returncode == 0, result.stdout + result.stderr
        halted_at = max(r.seq for r in of_type(committed(group), HaltEntries.TYPE))
        # Entries stop: the next signals are vetoed "halted" and no entry intent commits after the halt.
        group.wait_for(lambda: any(r.msg.reason == "halted" for r in of_type(committed(group), EntryVetoed.TYPE)
                                   if r.seq > halted_at), 120, "an entry vetoed as halted")
        result = group.run_cli("flatten", "--reason", "test flatten", "--operator", "tester", "--timeout", "60")
        assert result.returncode == 0, result.stdout + result.stderr
        assert exchange.fetch_positions() == []
        records = committed(group)
        entries_after = [r for r in of_type(records, SubmitOrder.TYPE)
                         if r.seq > halted_at and r.msg.purpose == "entry"]
        assert entries_after == []
        manual = [r.msg for r in of_type(records, SubmitOrder.TYPE) if r.msg.purpose == "exit_manual"]
        assert all(m.reduce_only for m in manual)
        halts = [r.msg for r in of_type(records, HaltEntries.TYPE)]
        assert [(h.operator, h.reason) for h in halts] == [("tester", "test halt"), ("tester", "test flatten")]
        result = group.run_cli("resume", "--reason", "done", "--operator", "tester")
        assert result.returncode == 0, result.stdout + result.stderr
        resumed_at = max(r.seq for r in of_type(committed(group), ResumeEntries.TYPE))
        group.wait_for(lambda: any(r.msg.purpose == "entry" for r in of_type(committed(group), SubmitOrder.TYPE)
                                   if r.seq > resumed_at), 120, "entries to open again after resume")
    finally:
        exchange.close()
