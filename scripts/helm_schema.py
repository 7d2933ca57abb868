#!/usr/bin/env python3
"""Generates the chart's ``values.schema.json`` from its commented ``values.yaml``.

values.yaml is the one source of truth: each key's type comes from its default value,
its description from the first paragraph of the comment block right above it, and extra
JSON Schema keywords from annotations in that block::

    # @schema enum: [standalone, sidecar]        one keyword per line, YAML after the tag
    # @schema                                    or a block of YAML ...
    # items: {type: string}
    # @schema end                                ... closed by this line

A mapping rejects unknown keys (``additionalProperties: false``) unless annotated; an
empty mapping is free-form; ``freeform: true`` keeps a mapping's contents unchecked; a
null default must say its type. ``scripts/gen.py`` runs this as its ``helm-schema`` target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = Path("helm/policyd")

SCALAR_TYPES = {
    "tag:yaml.org,2002:str": "string",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
}


class SchemaSourceError(ValueError):
    """values.yaml cannot be turned into a schema; the message names the line and key."""


def _comment_block(lines: list[str], key_line: int) -> list[str]:
    """The comment lines directly above ``key_line`` (0-based), top to bottom, ``#`` stripped."""
    block: list[str] = []
    i = key_line - 1
    while i >= 0 and lines[i].lstrip().startswith("#"):
        text = lines[i].lstrip()[1:]
        block.append(text[1:] if text.startswith(" ") else text)
        i -= 1
    return block[::-1]


def _annotations(block: list[str], where: str) -> tuple[str, dict[str, Any]]:
    """Splits a comment block into (description, schema keywords)."""
    prose: list[str] = []
    keywords: dict[str, Any] = {}
    yaml_block: list[str] | None = None
    for line in block:
        tag = line.strip()
        if yaml_block is not None:
            if tag == "@schema end":
                keywords.update(_load(yaml_block, where))
                yaml_block = None
            else:
                yaml_block.append(line)
        elif tag == "@schema":
            yaml_block = []
        elif tag.startswith("@schema "):
            keywords.update(_load([tag.removeprefix("@schema ")], where))
        else:
            prose.append(line)
    if yaml_block is not None:
        raise SchemaSourceError(f"{where}: '# @schema' block without '# @schema end'")
    paragraph: list[str] = []
    for line in prose:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    return " ".join(paragraph), keywords


def _load(lines: list[str], where: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load("\n".join(lines))
    except yaml.YAMLError as exc:
        raise SchemaSourceError(f"{where}: bad @schema annotation: {exc}") from None
    if not isinstance(loaded, dict):
        raise SchemaSourceError(f"{where}: an @schema annotation must be YAML 'keyword: value' pairs")
    return loaded


def _infer(node: yaml.Node, lines: list[str], path: str) -> dict[str, Any]:
    """The schema of ``node`` from its value alone (annotations are merged by the caller)."""
    if isinstance(node, yaml.MappingNode):
        if not node.value:
            return {"type": "object"}
        return {"type": "object", "properties": _properties(node, lines, path), "additionalProperties": False}
    if isinstance(node, yaml.SequenceNode):
        schema: dict[str, Any] = {"type": "array"}
        if node.value:
            schema["items"] = _infer(node.value[0], lines, f"{path}[0]")
        return schema
    if node.tag == "tag:yaml.org,2002:null":
        return {}
    return {"type": SCALAR_TYPES[node.tag]}


def _properties(node: yaml.MappingNode, lines: list[str], path: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        where = f"values.yaml:{key_node.start_mark.line + 1}: {path}{key}"
        description, keywords = _annotations(_comment_block(lines, key_node.start_mark.line), where)
        freeform = bool(keywords.pop("freeform", False))
        schema = {"type": "object"} if freeform else _infer(value_node, lines, f"{path}{key}.")
        if not schema and "type" not in keywords:
            raise SchemaSourceError(f"{where}: default is null; add '# @schema type: [...]'")
        out: dict[str, Any] = {"description": description} if description else {}
        out.update(schema)
        out.update(keywords)
        props[key] = out
    return props


def values_schema(text: str) -> dict[str, Any]:
    """The JSON Schema (draft-07) of a chart's values, from the values file's text."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise SchemaSourceError("values.yaml: the document must be a mapping")
    properties = _properties(root, text.splitlines(), "")
    # Helm passes a parent chart's `global` values to every subchart: accept them.
    properties["global"] = {"description": "Values shared by a parent chart and its subcharts.", "type": "object"}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "policyd Helm chart values",
        "description": "Generated from values.yaml by scripts/gen.py (helm-schema); do not edit.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def render(values_text: str) -> str:
    return json.dumps(values_schema(values_text), indent=2, ensure_ascii=False) + "\n"


def gen_helm_schema(out: Path) -> list[Path]:
    """``helm/policyd/values.schema.json`` from ``helm/policyd/values.yaml`` (a ``scripts/gen.py`` target)."""
    rel = CHART / "values.schema.json"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_text(render((ROOT / CHART / "values.yaml").read_text(encoding="utf-8")), encoding="utf-8")
    return [rel]


if __name__ == "__main__":
    sys.stdout.write(render((ROOT / CHART / "values.yaml").read_text(encoding="utf-8")))
