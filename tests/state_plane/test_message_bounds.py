"""Every number a message or view can carry has a lower and an upper bound.

An unbounded number reached a threshold or a sum downstream and became inf there (a heartbeat
interval of 1e308 stopped the diagnostics actor's step). Checked on the JSON Schemas the
models generate, so nested models, list items and map values are all covered.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from bus.messages import MESSAGE_TYPES, views

VIEW_MODELS = [views.StoredPosition, views.ClosedTrade, views.ReconciliationView, views.PnlToday,
               views.ActiveScope, views.LegacyImportRecord]


def _unbounded(node: Any, path: str, defs: dict[str, Any], out: list[str], seen: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _unbounded(item, path, defs, out, seen)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            _unbounded(defs[name], name, defs, out, seen)
    if node.get("type") in ("number", "integer") and "const" not in node and "enum" not in node:
        low = "minimum" in node or "exclusiveMinimum" in node
        high = "maximum" in node or "exclusiveMaximum" in node
        if not (low and high):
            out.append(path)
    for key, child in node.items():
        if key == "properties":
            for name, prop in child.items():
                _unbounded(prop, f"{path}.{name}", defs, out, seen)
        elif key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "prefixItems"):
            _unbounded(child, path, defs, out, seen)


@pytest.mark.parametrize("model", [*MESSAGE_TYPES, *VIEW_MODELS], ids=lambda m: m.__name__)
def test_every_number_is_bounded(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    found: list[str] = []
    _unbounded(schema, model.__name__, schema.get("$defs", {}), found, set())
    assert not found, f"numbers without both bounds: {found}"


def test_the_check_sees_an_unbounded_number() -> None:
    class Loose(BaseModel):
        x: float

    found: list[str] = []
    _unbounded(Loose.model_json_schema(), "Loose", {}, found, set())
    assert found == ["Loose.x"]
