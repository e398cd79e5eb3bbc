"""GitHub's OpenAPI schemas as the stand-in's REST bodies start: a skeleton per component.

Each body starts as a skeleton holding every property the schema requires (so a client that reads
a field GitHub always sends finds it), then the values the stand-in knows are laid over it.
"""

from __future__ import annotations

import base64
import copy
import functools

from .github_contracts import openapi_document

EPOCH = "2024-01-01T00:00:00Z"


@functools.cache
def skeleton(component: str) -> dict:
    doc = openapi_document()
    return _skeleton(doc, doc["components"]["schemas"][component])


def _skeleton(doc: dict, schema: dict):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _skeleton(doc, doc["components"]["schemas"][name])
    if schema.get("nullable"):
        return None
    if "allOf" in schema:
        merged: dict = {}
        for part in schema["allOf"]:
            merged.update(_skeleton(doc, part) or {})
        return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return _skeleton(doc, schema[key][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _skeleton(doc, props.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "string":
        return {"date-time": EPOCH, "uri": "https://api.github.com/"}.get(str(schema.get("format")), "")
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return None


def shaped(component: str, values: dict) -> dict:
    """The skeleton of `component` with `values` laid over it (nested dicts merged)."""
    return _overlay(copy.deepcopy(skeleton(component)), values)


def _overlay(base, values: dict) -> dict:
    if not isinstance(base, dict):
        base = {}
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and not value.get("__replace__"):
            base[key] = _overlay(base[key], value)
        else:
            base[key] = value
    return base


def node_id(kind: str, ident: int | str) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode()
