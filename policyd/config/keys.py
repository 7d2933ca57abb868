"""The keys a pydantic model accepts at a key path, so an unknown key can say which ones exist.

``known_keys(FileConfig, ("policies", "default", "rules", 0, "plan"))`` walks the field
annotations (through ``X | None``, ``dict[str, X]`` and ``list[X]``) and answers the plan's
keys; None where the path leaves the typed schema (plugin parameters, free-form dicts).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel


def _model_or_container(annotation: Any) -> Any:
    """``X | None`` → X (the first member that is a model, a dict or a list)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _model_or_container(arg)
    return annotation


def _keys(model: type[BaseModel]) -> dict[str, Any]:
    return {field.alias or name: field.annotation for name, field in model.model_fields.items()}


def known_keys(model: type[BaseModel], path: Sequence[str | int]) -> list[str] | None:
    current: Any = model
    for part in path:
        current = _model_or_container(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = _keys(current)
            if part not in fields:
                return None
            current = fields[part]
        elif origin is dict:
            current = typing.get_args(current)[1]
        elif origin is list:
            current = typing.get_args(current)[0]
        else:
            return None
    current = _model_or_container(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(_keys(current))
    return None
