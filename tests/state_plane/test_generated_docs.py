"""Generated artefacts (JSON Schemas, manifest, doc tables) match the models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bus.manifest import GENERATED_DOCS, build_manifest, stale_files
from bus.messages import MESSAGE_TYPES, STATE_DOCUMENTS
from tests.harness import REPO


def test_generated_files_are_fresh() -> None:
    stale = stale_files(REPO)
    assert not stale, f"stale generated files (run `v7 schemas --write`): {stale}"


def test_every_generated_section_has_its_markers() -> None:
    text = {rel: (REPO / rel).read_text() for rel in GENERATED_DOCS}
    for rel, names in {"docs/bus_protocol.md": ["message-index", "message-reference", "error-codes"],
                       "docs/state_contract.md": ["state-files"]}.items():
        for name in names:
            assert f"<!-- BEGIN GENERATED: {name} -->" in text[rel], (rel, name)
            assert f"<!-- END GENERATED: {name} -->" in text[rel], (rel, name)


def test_every_message_type_is_documented() -> None:
    doc = (REPO / "docs/bus_protocol.md").read_text()
    for cls in MESSAGE_TYPES:
        assert f"### `{cls.TYPE}`" in doc
        for field in cls.model_fields:
            assert f"| `{field}` |" in doc, (cls.TYPE, field)


def test_manifest_lists_every_state_file() -> None:
    manifest = build_manifest()
    assert set(manifest["state_files"]) == set(STATE_DOCUMENTS)
    for key, entry in manifest["state_files"].items():
        assert entry["path"] == f"logs/state/{key}.json"
        assert entry["canonical_writer"] == "state_writer"
        assert (REPO / entry["schema"]).exists()
    assert json.loads((REPO / "docs/v7_manifest.json").read_text()) == manifest


def test_staleness_check_can_fail(tmp_path: Path) -> None:
    """Copy the docs, change a generated table by hand, and the check must notice."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    assert stale_files(tmp_path) == []
    doc = tmp_path / "docs/bus_protocol.md"
    doc.write_text(doc.read_text().replace("| `qty` |", "| `quantity` |", 1))
    (tmp_path / "docs/schemas/state/positions_state.schema.json").write_text("{}\n")
    (tmp_path / "docs/schemas/messages/gone.v1.schema.json").write_text("{}\n")
    assert sorted(stale_files(tmp_path)) == sorted([
        "docs/bus_protocol.md",
        "docs/schemas/state/positions_state.schema.json",
        "docs/schemas/messages/gone.v1.schema.json (no longer generated)",
    ])
