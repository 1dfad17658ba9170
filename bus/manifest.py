"""The machine-readable manifest of state files and the JSON Schemas, generated from the models.

`v7 schemas --write` (cli/schemas.py) writes them under docs/; a test fails when the
committed copies are stale. Nothing here is hand-copied from the models, and nothing here
writes files: this module names the state directory, and only the state writer may write
a module that does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bus.doc_tables import doc_sections, splice
from bus.messages import MESSAGE_TYPES, STATE_DOCUMENTS, Message

# state key -> (producer actor, purpose). The canonical writer is always the state writer.
STATE_FILE_INFO: dict[str, tuple[str, str]] = {
    "positions_state": ("executor", "Exchange positions surface: one row per symbol with prices and PnL"),
    "positions_ledger": ("executor", "Unified position + TP/SL ledger"),
    "kpis_v7": ("executor", "Portfolio and per-symbol KPIs, NAV/risk/router/performance blocks"),
    "nav_state": ("sync", "NAV, AUM, peak NAV, drawdown and NAV anomalies"),
    "risk_snapshot": ("executor", "Drawdown state, ATR regime, VaR/CVaR, caps, vetoes"),
    "router_state": ("router", "Router quality: maker fill share, slippage, reject rate, TWAP"),
    "runtime_diagnostics": ("diagnostics", "EntryVetoed counters, exit pipeline status, liveness"),
    "factor_diagnostics": ("executor", "Per-symbol factor values, weights and scores"),
}

SCHEMA_DIR = "docs/schemas"


def _strip_tags(schema: dict[str, Any]) -> dict[str, Any]:
    schema = json.loads(json.dumps(schema))
    for tag in ("type", "v"):
        schema.get("properties", {}).pop(tag, None)
        if tag in schema.get("required", []):
            schema["required"].remove(tag)
    return schema


def document_schema(cls: type[Message]) -> dict[str, Any]:
    """JSON Schema of the state file a document message becomes (no `type`/`v`)."""
    schema = _strip_tags(cls.model_json_schema(mode="serialization"))
    schema["title"] = f"{cls.STATE_KEY}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def message_schema(cls: type[Message]) -> dict[str, Any]:
    schema = cls.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def required_keys(cls: type[Message]) -> list[str]:
    """Top-level keys always present in the file (every field is serialized, defaults included)."""
    return [name for name in cls.model_fields if name not in ("type", "v")]


def build_manifest() -> dict[str, Any]:
    files = {}
    for key, cls in STATE_DOCUMENTS.items():
        producer, purpose = STATE_FILE_INFO[key]
        files[key] = {
            "path": f"logs/state/{key}.json",
            "canonical_writer": "state_writer",
            "producer": producer,
            "message_type": cls.TYPE,
            "schema_version": cls.VERSION,
            "purpose": purpose,
            "required_keys": required_keys(cls),
            "schema": f"{SCHEMA_DIR}/state/{key}.schema.json",
        }
    messages = {
        cls.TYPE: {
            "version": cls.VERSION,
            "durable": cls.DURABLE,
            "state_key": cls.STATE_KEY,
            "schema": f"{SCHEMA_DIR}/messages/{cls.TYPE}.v{cls.VERSION}.schema.json",
        }
        for cls in MESSAGE_TYPES
    }
    return {"manifest_version": 1, "state_files": files, "messages": messages}


# Docs holding generated sections (between BEGIN/END GENERATED markers).
GENERATED_DOCS = ("docs/bus_protocol.md", "docs/state_contract.md")


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def generated_files(root: Path) -> dict[str, str]:
    """Relative path -> exact content, for every generated artefact (docs: current text re-spliced)."""
    out: dict[str, str] = {}
    for key, cls in STATE_DOCUMENTS.items():
        out[f"{SCHEMA_DIR}/state/{key}.schema.json"] = _dump(document_schema(cls))
    for cls in MESSAGE_TYPES:
        out[f"{SCHEMA_DIR}/messages/{cls.TYPE}.v{cls.VERSION}.schema.json"] = _dump(message_schema(cls))
    out["docs/v7_manifest.json"] = _dump(build_manifest())
    sections = doc_sections(STATE_FILE_INFO, required_keys)
    for rel in GENERATED_DOCS:
        path = root / rel
        if path.exists():
            out[rel] = splice(path.read_text(), sections)
    return out


def stale_files(root: Path) -> list[str]:
    """Generated artefacts whose committed copy differs from what the models produce."""
    stale = []
    expected = generated_files(root)
    for rel, content in expected.items():
        path = root / rel
        if not path.exists() or path.read_text() != content:
            stale.append(rel)
    schema_root = root / SCHEMA_DIR
    if schema_root.exists():
        for path in schema_root.rglob("*.json"):
            rel = str(path.relative_to(root))
            if rel not in expected:
                stale.append(rel + " (no longer generated)")
    return stale
