"""Applying an `import_legacy_positions` command: an old single-process positions file, once.

The file was read and checked by the CLI (`legacy_file.py`); here its rows open positions.
A file is applied once per (mode, account, file bytes): the same digest again only records
`legacy_import_repeat`. A symbol the store already holds in that scope is never overwritten.
"""

from __future__ import annotations

from actors.state_writer.store.positions import EntryInfo, open_position
from actors.state_writer.store.state import StoreState
from actors.state_writer.store.unit import IMPORT_SEEN, Unit
from bus.messages import ImportLegacyPositions, LegacyImportRecord


def on_legacy_import(st: StoreState, unit: Unit, seq: int, m: ImportLegacyPositions) -> None:
    common = {"mode": m.mode, "account": m.account}
    if unit.read(IMPORT_SEEN, k_digest=m.digest) is not None:
        unit.event("legacy_import_repeat", seq, m.ts, **common, digest=m.digest, source_path=m.source_path,
                   note="this file was imported before; nothing changed")
        return
    imported = skipped = 0
    for row in m.positions:
        key = (m.mode, m.account, row.symbol)
        existing = st.positions.get(key)
        if existing is not None:
            skipped += 1
            unit.event("legacy_import_skipped", seq, m.ts, **common, symbol=row.symbol,
                       position_id=existing.position_id, side=row.side, qty_before=existing.qty,
                       qty_after=existing.qty, price=row.entry_price, digest=m.digest,
                       reason="the store already has an open position for this symbol")
            continue
        p = open_position(mode=m.mode, account=m.account, symbol=row.symbol, side=row.side, qty=row.qty,
                          price=row.entry_price, when=row.opened_at or m.source_updated, seq=seq,
                          info=EntryInfo(position_id=f"legacy:{m.digest[:12]}:{row.symbol}", tp=row.tp, sl=row.sl),
                          source="legacy_import")
        if row.mark_price:
            p.mark_price = row.mark_price
            p.observe(row.mark_price)
        st.positions[key] = p
        unit.write_position(p)
        imported += 1
        unit.event("legacy_import", seq, m.ts, **common, symbol=row.symbol, position_id=p.position_id,
                   side=p.side, qty_before=0.0, qty_after=p.qty, price=p.entry_price, digest=m.digest,
                   source_path=m.source_path, source_format=m.source_format)
    unit.record_import(LegacyImportRecord(
        digest=m.digest, source_path=m.source_path, mode=m.mode, account=m.account, imported=imported,
        skipped=skipped, seq=seq, imported_at=m.ts))
