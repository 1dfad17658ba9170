"""The executor's side of the store: which entries it blocks, and what it reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from actors.executor.store_link import StoreLink
from config.settings import Settings
from exchange.adapter import ExchangePosition

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _link(tmp_path: Path) -> StoreLink:
    return StoreLink(Settings.model_validate({"home": tmp_path, "mode": "SIM", "account": "paper",
                                              "symbols": ["BTCUSDT", "ETHUSDT"]}))


def _issue(symbol: str, policy: str = "warn", mode: str = "SIM", account: str = "paper") -> dict:
    return {"mode": mode, "account": account, "symbol": symbol, "kind": "store_only", "policy": policy,
            "store_side": "LONG", "store_qty": 1.0, "detail": "store LONG 1, exchange flat", "opened_seq": 5,
            "last_seen_seq": 5, "opened_at": "2025-06-01T00:00:00Z"}


def test_entry_blocks_follow_the_store(tmp_path: Path) -> None:
    link = _link(tmp_path)
    assert link.entry_block("BTCUSDT") is None  # nothing known yet: the store has said nothing against it
    link.absorb({"active_scope": {"mode": "SIM", "account": "paper", "since_seq": 0},
                 "reconciliation": {"policy": "warn", "issues": [_issue("BTCUSDT"), _issue("ETHUSDT", mode="LIVE")]}})
    reason, detail = link.entry_block("BTCUSDT") or ("", "")
    assert reason == "reconciliation_mismatch" and "v7 reconcile resolve BTCUSDT" in detail
    assert link.entry_block("ETHUSDT") is None, "another scope's mismatch blocks only that scope"
    link.absorb({"reconciliation": {"policy": "halt", "issues": [_issue("SOLUSDT", "halt")],
                                    "halted": [{"mode": "SIM", "account": "paper"}]}})
    assert (link.entry_block("ETHUSDT") or ("",))[0] == "reconciliation_halt"
    link.absorb({"active_scope": {"mode": "LIVE", "account": "main", "since_seq": 9}})
    assert (link.entry_block("ETHUSDT") or ("",))[0] == "scope_inactive"
    switch = link.scope_switch_needed()
    assert switch is not None and (switch.mode, switch.account) == ("SIM", "paper")
    link.absorb({"reconciliation": {"policy": "warn", "issues": "not a list"}})  # unreadable: last good kept
    assert link.view is not None and link.view.policy == "halt"


def test_reports_say_unknown_never_flat(tmp_path: Path) -> None:
    link = _link(tmp_path)
    link.absorb({"open_positions": [{"mode": "SIM", "account": "paper", "symbol": "XRPUSDT"},
                                    {"mode": "LIVE", "account": "main", "symbol": "BNBUSDT"}]})
    assert link.report_due(0.0) == "start"
    down = link.report(NOW, None, "start", error="HTTP 503")
    assert (down.exchange_ok, down.symbols, down.positions, down.error) == (False, [], [], "HTTP 503")
    assert link.report_due() is None, "the next one waits for the interval"
    assert link.report_due(10**9) == "periodic"
    pos = ExchangePosition(symbol="SOLUSDT", side="SHORT", qty=3.0, entry_price=20.0, mark_price=19.5,
                           unrealized_pnl=1.5, leverage=1.0, margin=60.0, updated_at=NOW)
    up = link.report(NOW, [pos], "periodic")
    # Every symbol the account could hold is listed: configured, held in the store, held on the exchange.
    assert up.exchange_ok and up.symbols == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
    assert [(p.symbol, p.side, p.qty, p.mark_price) for p in up.positions] == [("SOLUSDT", "SHORT", 3.0, 19.5)]
    assert up.ts == NOW
