"""Markdown tables for the docs, rendered from the models (never hand-copied).

`v7 schemas --write` splices them into docs between `<!-- BEGIN GENERATED: name -->` and
`<!-- END GENERATED: name -->` markers; the staleness test fails when a doc is out of date.
"""

from __future__ import annotations

import json
import re
from typing import Any, get_args

from pydantic import BaseModel

from bus.messages import MESSAGE_TYPES, STATE_DOCUMENTS, utc_now
from bus.protocol import ERROR_CODE_HELP

_MARKER = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(.*?)(<!-- END GENERATED: (?P=name) -->)", re.S)


def splice(text: str, sections: dict[str, str]) -> str:
    """Replace the body of every known generated section in `text`."""

    def repl(m: re.Match[str]) -> str:
        body = sections.get(m.group("name"))
        return m.group(0) if body is None else m.group(1) + body + m.group(4)

    return _MARKER.sub(repl, text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return f"model-{name.lower()}"


def render_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{_anchor(name)})"
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = len(options) != len(schema["anyOf"])
        text = " or ".join(render_type(s) for s in options)
        return f"{text} or null" if nullable else text
    kind = schema.get("type")
    if kind == "array":
        text = f"list of {render_type(schema.get('items', {}))}"
    elif kind == "object" and "patternProperties" in schema:
        (pattern, value), *_ = schema["patternProperties"].items()
        text = f"map of string matching `{pattern}` to {render_type(value)}"
    elif kind == "object":
        text = f"map of string to {render_type(schema.get('additionalProperties', {}))}"
    elif kind == "string" and schema.get("format") == "date-time":
        text = "timestamp"
    elif kind == "number":
        text = "float"
    elif kind == "integer":
        text = "int"
    elif kind in ("string", "boolean"):
        text = {"string": "string", "boolean": "bool"}[kind]
    else:
        text = "any"
    return text + _constraints(schema)


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"matching `{schema['pattern']}`")
    if "minLength" in schema or "maxLength" in schema:
        parts.append(f"length {schema.get('minLength', 0)}..{schema.get('maxLength', '')}")
    if "maxItems" in schema:
        parts.append(f"at most {schema['maxItems']} items")
    return f" ({', '.join(parts)})" if parts else ""


def _default_text(model: type[BaseModel] | None, name: str, prop: dict[str, Any]) -> str:
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    field = model.model_fields.get(name) if model is not None else None
    factory = field.default_factory if field is not None else None
    if factory is utc_now:
        return "the time the message is created"
    if factory is not None:
        value = factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        return f"`{json.dumps(value, separators=(',', ':'))}`"
    return ""


def _checks(model: type[BaseModel] | None) -> list[str]:
    """Cross-field checks: the docstrings of the model's validators."""
    if model is None:
        return []
    decorators = model.__pydantic_decorators__.model_validators.values()
    lines = [f"- Check: {_cell(d.func.__doc__ or d.cls_var_name)}" for d in decorators]
    return [*lines, ""] if lines else []


def _fields_table(schema: dict[str, Any], model: type[BaseModel] | None) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | default | description |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        if name in ("type", "v") and "const" in prop:
            req, default = "yes", ""  # the codec dispatches on them: always sent
        elif name in required:
            req, default = "yes", ""
        else:
            req, default = "no", _default_text(model, name, prop)
        rows.append(f"| `{name}` | {_cell(render_type(prop))} | {req} | {_cell(default)} | "
                    f"{_cell(prop.get('description', ''))} |")
    return rows


def _nested_models() -> dict[str, type[BaseModel]]:
    """Every model reachable from a message, by class name (the JSON Schema $defs names)."""
    found: dict[str, type[BaseModel]] = {}

    def walk(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ in found:
                return
            found[tp.__name__] = tp
            for field in tp.model_fields.values():
                walk(field.annotation)
        for arg in get_args(tp):
            walk(arg)

    for cls in MESSAGE_TYPES:
        for field in cls.model_fields.values():
            walk(field.annotation)
    return found


def message_reference() -> str:
    """One section per message type, then every nested model once."""
    out: list[str] = []
    nested: dict[str, dict[str, Any]] = {}
    for cls in MESSAGE_TYPES:
        schema = cls.model_json_schema(mode="validation")
        nested.update(schema.get("$defs", {}))
        kind = "durable" if cls.DURABLE else "telemetry (may be dropped by a full outbox)"
        facts = [f"version `{cls.VERSION}`", kind]
        if cls.STATE_KEY:
            facts.append(f"replaces `{cls.STATE_KEY}.json`")
        out += [f"### `{cls.TYPE}`", "", _cell(cls.__doc__ or cls.__name__), "", f"{' · '.join(facts)}", ""]
        out += _fields_table(schema, cls)
        out.append("")
        out += _checks(cls)
    models = _nested_models()
    if nested:
        out += ["### Nested models", ""]
        for name in sorted(nested):
            sub = nested[name]
            out += [f'<a id="{_anchor(name)}"></a>', "", f"#### {name}", ""]
            if sub.get("description"):
                out += [_cell(sub["description"]), ""]
            if "properties" in sub:
                out += _fields_table(sub, models.get(name))
            else:
                out.append(f"{render_type(sub)}")
            out.append("")
            out += _checks(models.get(name))
    return "\n".join(out)


def message_index() -> str:
    """Every type with its kind and the producers the hub accepts it from (the authorization table)."""
    rows = ["| type | kind | v | durable | producers (`src`) | state file | model |",
            "|---|---|---|---|---|---|---|"]
    for cls in MESSAGE_TYPES:
        state = f"`{cls.STATE_KEY}.json`" if cls.STATE_KEY else ""
        producers = ", ".join(f"`{p}`" for p in sorted(cls.PRODUCERS))
        rows.append(f"| [`{cls.TYPE}`](#{cls.TYPE}) | {cls.KIND} | {cls.VERSION} | {'yes' if cls.DURABLE else 'no'} | "
                    f"{producers} | {state} | `{cls.__module__}.{cls.__name__}` |")
    return "\n".join(rows) + "\n"


def error_codes() -> str:
    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| `{code.value}` | {_cell(text)} |" for code, text in ERROR_CODE_HELP.items()]
    return "\n".join(rows) + "\n"


def state_files(info: dict[str, tuple[str, str]], required: dict[str, list[str]]) -> str:
    rows = ["| file | canonical writer | producer actor | message type | purpose | required top-level keys | schema |",
            "|---|---|---|---|---|---|---|"]
    for key, cls in STATE_DOCUMENTS.items():
        producer, purpose = info[key]
        keys = ", ".join(f"`{k}`" for k in required[key])
        rows.append(f"| `logs/state/{key}.json` | state_writer | {producer} | `{cls.TYPE}` | {_cell(purpose)} | "
                    f"{keys} | [schema](schemas/state/{key}.schema.json) |")
    return "\n".join(rows) + "\n"


def doc_sections(info: dict[str, tuple[str, str]], required_keys: Any) -> dict[str, str]:
    required = {key: required_keys(cls) for key, cls in STATE_DOCUMENTS.items()}
    return {
        "message-index": message_index(),
        "message-reference": message_reference() + "\n",
        "error-codes": error_codes(),
        "state-files": state_files(info, required),
    }


