"""`v7 import-legacy PATH`: either seed format, run twice, imports once, recorded in the audit trail."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from actors.state_writer.store.legacy_file import LegacyFileError, parse_legacy
from actors.state_writer.store.tables import LegacyImportRow, PositionEventRow
from tests.harness import Instance
from tests.store.helpers import Backend, bus, open_positions
from tests.store.helpers import table as rows
from tests.support.messages import fill, intent

# Seed 000 writes `updated_at`; seed 001 writes `updated_ts`. Rows as `_collect_positions_rows` made them.
SEED_000 = {
    "updated_at": "2025-11-13T10:00:00Z",
    "positions": [
        {"symbol": "BTCUSDT", "side": "LONG", "qty": 0.01, "entry_price": 42000.0, "mark_price": 43000.0,
         "notional": 430.0, "realized_pnl": 0.0, "unrealized_pnl": 10.0, "leverage": 5},
        {"symbol": "ETHUSDT", "side": "FLAT", "qty": 0.0, "entry_price": 0.0, "mark_price": 0.0,
         "notional": 0.0, "realized_pnl": 1.5, "unrealized_pnl": 0.0},
    ],
}
SEED_001 = {
    "updated_ts": "2025-11-13T11:30:00+00:00",
    "positions": [
        {"symbol": "SOLUSDT", "side": "SHORT", "size": 12.0, "entry_price": 150.0, "mark_price": 149.0,
         "notional": 1788.0, "realized_pnl": 0.0, "unrealized_pnl": 12.0},
        {"symbol": "ETHUSDT", "size": -0.5, "entry_price": 2500.0, "mark_price": 2490.0},
    ],
}


def _write(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_import_either_format_twice_imports_once(store_v7: Instance, backend: Backend, tmp_path: Path) -> None:
    store_v7.start_writer()
    old = _write(tmp_path, "positions_state_000.json", SEED_000)
    older = _write(tmp_path, "positions_state_001.json", SEED_001)
    with bus(store_v7) as b:  # SOL is already open in LIVE/main: the import must not overwrite it
        b.send(intent("i-sol", "SOLUSDT", "SELL", 2.0, mode="LIVE", account="main"),
               fill("t-sol", "i-sol", "SOLUSDT", "SELL", 2.0, 151.0, mode="LIVE", account="main"))

    first = store_v7.run_cli("import-legacy", str(old))
    assert first.returncode == 0, first.stderr
    assert "updated_at format" in first.stdout and "imported 1" in first.stdout
    second = store_v7.run_cli("import-legacy", str(old))
    assert second.returncode == 0, second.stderr
    assert "nothing imported" in second.stdout
    third = store_v7.run_cli("import-legacy", str(older), "--mode", "LIVE", "--account", "main")
    assert third.returncode == 0, third.stderr
    assert "updated_ts format" in third.stdout and "imported 1, skipped 1" in third.stdout
    again = store_v7.run_cli("import-legacy", str(older), "--mode", "LIVE", "--account", "main")
    assert again.returncode == 0 and "nothing imported" in again.stdout

    pos = open_positions(store_v7)
    assert set(pos) == {("SIM", "paper", "BTCUSDT"), ("LIVE", "main", "SOLUSDT"), ("LIVE", "main", "ETHUSDT")}
    btc = pos[("SIM", "paper", "BTCUSDT")]
    assert (btc.side, btc.qty, btc.entry_price, btc.mark_price, btc.source) == (
        "LONG", 0.01, 42000.0, 43000.0, "legacy_import")
    assert (btc.trade_min_price, btc.trade_max_price) == (42000.0, 43000.0)
    assert btc.entry_time.isoformat() == "2025-11-13T10:00:00+00:00"
    sol = pos[("LIVE", "main", "SOLUSDT")]
    assert (sol.qty, sol.entry_price, sol.source) == (2.0, 151.0, "fill"), "an open position is never overwritten"
    eth = pos[("LIVE", "main", "ETHUSDT")]
    assert (eth.side, eth.qty, eth.entry_price) == ("SHORT", 0.5, 2500.0)

    assert len(rows(store_v7, LegacyImportRow)) == 2
    kinds = [e.kind for e in rows(store_v7, PositionEventRow) if e.kind.startswith("legacy_import")]
    assert sorted(kinds) == sorted(["legacy_import", "legacy_import_repeat", "legacy_import_skipped",
                                    "legacy_import", "legacy_import_repeat"])

    bad = _write(tmp_path, "broken.json", {"updated_ts": 1731492000,
                                           "positions": [{"symbol": "XRPUSDT", "qty": 10, "entry_price": 0}]})
    refused = store_v7.run_cli("import-legacy", str(bad))
    assert refused.returncode == 2
    assert "positions[0] (XRPUSDT).entry_price" in refused.stderr
    assert len(rows(store_v7, LegacyImportRow)) == 2


@pytest.mark.parametrize(("doc", "message"), [
    ({"positions": []}, "neither updated_at nor updated_ts"),
    ({"updated_at": "yesterday", "positions": []}, "updated_at: not an ISO 8601 time"),
    ({"updated_at": "2025-01-01T00:00:00Z", "positions": {}}, "positions: expected a list"),
    ({"updated_at": "2025-01-01T00:00:00Z", "positions": [{"symbol": "BTCUSDT", "side": "UP", "qty": 1}]},
     "positions[0] (BTCUSDT).side"),
    ({"updated_at": "2025-01-01T00:00:00Z", "positions": [{"symbol": "btc-usdt", "qty": 1, "entry_price": 1}]},
     "positions[0] (BTC-USDT).symbol"),
    ({"updated_at": "2025-01-01T00:00:00Z", "positions": [{"symbol": "BTCUSDT", "qty": "lots"}]},
     "positions[0] (BTCUSDT).qty: not a number"),
])
def test_bad_legacy_files_are_refused_naming_the_field(tmp_path: Path, doc: dict, message: str) -> None:
    with pytest.raises(LegacyFileError, match=re.escape(message)):
        parse_legacy(_write(tmp_path, "p.json", doc), "SIM", "paper")


def test_legacy_epoch_timestamps_and_digest_scope(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.json", {"updated_ts": 1731492000123, "positions": []})
    sim = parse_legacy(path, "SIM", "paper")
    live = parse_legacy(path, "LIVE", "paper")
    assert sim.source_updated.isoformat() == "2024-11-13T10:00:00.123000+00:00"
    assert sim.digest != live.digest, "the same file imported into another scope is another import"
