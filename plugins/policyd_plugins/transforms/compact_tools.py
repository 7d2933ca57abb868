"""``compact-tools``: cut tool descriptions to a limit and drop schema annotations.

What a model needs to call a tool stays: the tool's name, every property name, the
``type``, ``required``, ``enum``, ``format`` and structural keywords. What goes:
annotations that only document (``title``, ``examples``, ``default`` ... as
configured), and prose beyond a limit (the tool's description, then each nested
``description``). A property *named* ``title`` or ``default`` is kept: only schema
keywords are dropped, never property names. The tokens saved are estimated with
:mod:`policyd.engine.tokens` and reported on the response (``tokens_saved``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policyd.api import Request, Tool, TransformResult, tokens

ANNOTATIONS = frozenset({"title", "examples", "example", "default", "$comment", "deprecated", "readOnly", "writeOnly"})
"""Keywords that may be dropped: they document a schema but never constrain a value."""

SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
"""Keywords whose value maps names (kept as is) to subschemas."""
SCHEMA_ONE = (
    "items",
    "additionalProperties",
    "additionalItems",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")

ELLIPSIS = "…"
_SPACES = re.compile(r"\s+")


class CompactToolsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_description_chars: int = Field(default=200, ge=0)
    """A tool's own description is cut to this many characters (0 removes it)."""
    max_property_description_chars: int = Field(default=80, ge=0)
    """Descriptions inside the parameters' schema are cut to this (0 removes them)."""
    drop: list[str] = ["title", "examples", "example", "default", "$comment"]
    """Schema annotations removed everywhere in the parameters' schema."""

    @field_validator("drop")
    @classmethod
    def _only_annotations(cls, value: list[str]) -> list[str]:
        bad = sorted(set(value) - ANNOTATIONS)
        if bad:
            raise ValueError(f"only annotations can be dropped ({', '.join(sorted(ANNOTATIONS))}), not {bad}")
        return value


def shorten(text: str, limit: int) -> str:
    """``text`` with its whitespace collapsed, cut at a word boundary to at most ``limit`` characters."""
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ""
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + ELLIPSIS


def compact_schema(schema: Any, params: CompactToolsParams) -> Any:
    """A copy of a JSON Schema without the dropped annotations and with short descriptions."""
    if not isinstance(schema, Mapping):
        return schema
    drop = set(params.drop)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in drop:
            continue
        if key == "description" and isinstance(value, str):
            short = shorten(value, params.max_property_description_chars)
            if short:
                out[key] = short
        elif key in SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: compact_schema(sub, params) for name, sub in value.items()}
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out[key] = [compact_schema(sub, params) for sub in value]
        elif key in SCHEMA_ONE:
            out[key] = compact_schema(value, params)
        else:
            out[key] = value
    return out


def compact_tool(tool: Tool, params: CompactToolsParams) -> Tool:
    return dataclasses.replace(
        tool,
        description=shorten(tool.description, params.max_description_chars),
        parameters=compact_schema(tool.parameters, params),
    )


def compact_tools(request: Request, params: CompactToolsParams) -> TransformResult:
    if not request.tools:
        return TransformResult(request)
    tools = tuple(compact_tool(t, params) for t in request.tools)
    saved = tokens.tool_tokens(request.tools) - tokens.tool_tokens(tools)
    return TransformResult(dataclasses.replace(request, tools=tools), tokens_saved=max(0, saved))
