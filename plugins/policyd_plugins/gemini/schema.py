"""JSON Schema → the OpenAPI subset Gemini's ``responseSchema`` accepts.

Keys Gemini does not know (``$schema``, ``additionalProperties``, ``$defs``...) are
dropped rather than sent and refused with a 400; ``"type": ["string", "null"]``
becomes ``"type": "string", "nullable": true``. Servers that accept full JSON Schema
can use ``json_schema_field: responseJsonSchema`` instead and get the schema as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUPPORTED = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)


def to_gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in SUPPORTED:
            continue
        if key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            if len(kinds) < len(value):
                out["nullable"] = True
            value = kinds[0] if kinds else "null"
        if key == "properties" and isinstance(value, Mapping):
            value = {name: to_gemini_schema(sub) for name, sub in value.items() if isinstance(sub, Mapping)}
        elif key == "items" and isinstance(value, Mapping):
            value = to_gemini_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            value = [to_gemini_schema(sub) for sub in value if isinstance(sub, Mapping)]
        out[key] = value
    return out
