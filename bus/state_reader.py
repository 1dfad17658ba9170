"""Read-only loaders for the state files (the seeds' `state_v7` loaders). Never writes.

Each `load_*_state()` returns the file's JSON object, or `{}` when the file is absent or
unreadable (a reader must not crash on a missing file). `get_ledger_entries()` returns `[]`
likewise. `load_document(key)` returns the typed model, validated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bus.messages import STATE_DOCUMENTS, Message
from config.settings import Settings, load_settings

STATE_FILES: dict[str, str] = {key: f"{key}.json" for key in STATE_DOCUMENTS}


def _state_dir(state_dir: Path | str | None) -> Path:
    if state_dir is not None:
        return Path(state_dir)
    settings: Settings = load_settings()
    return settings.state_path


def _load(key: str, state_dir: Path | str | None) -> dict[str, Any]:
    path = _state_dir(state_dir) / STATE_FILES[key]
    try:
        with path.open("rb") as fh:
            data = json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def load_positions_state(state_dir: Path | str | None = None) -> dict[str, Any]:
    return _load("positions_state", state_dir)


def load_positions_ledger_state(state_dir: Path | str | None = None) -> dict[str, Any]:
    return _load("positions_ledger", state_dir)


def load_kpis_v7_state(state_dir: Path | str | None = None) -> dict[str, Any]:
    return _load("kpis_v7", state_dir)


def load_nav_state(state_dir: Path | str | None = None) -> dict[str, Any]:
    return _load("nav_state", state_dir)


def load_risk_snapshot_state(state_dir: Path | str | None = None) -> dict[str, Any]:
    return _load("risk_snapshot", state_dir)


def load_router_state(state_dir: Path | str | None = None) -> dict[str, Any]:
    return _load("router_state", state_dir)


def load_runtime_diagnostics_state(state_dir: Path | str | None = None) -> dict[str, Any]:
    return _load("runtime_diagnostics", state_dir)


def load_factor_diagnostics_state(state_dir: Path | str | None = None) -> dict[str, Any]:
    return _load("factor_diagnostics", state_dir)


def get_ledger_entries(state_dir: Path | str | None = None) -> list[dict[str, Any]]:
    entries = load_positions_ledger_state(state_dir).get("entries", [])
    return entries if isinstance(entries, list) else []


def get_positions(state_dir: Path | str | None = None) -> list[dict[str, Any]]:
    rows = load_positions_state(state_dir).get("positions", [])
    return rows if isinstance(rows, list) else []


def load_document(key: str, state_dir: Path | str | None = None) -> Message | None:
    """The state file `key` as its validated model (raises pydantic.ValidationError if invalid)."""
    data = _load(key, state_dir)
    return STATE_DOCUMENTS[key].model_validate(data) if data else None
