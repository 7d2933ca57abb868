"""The JSON-lines decision sink: appends one event per line to a private file."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from policyd.api import SinkContext


class JsonLinesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(default="decisions.jsonl", min_length=1)
    """File to append to; a relative path is under the daemon's data directory."""


class JsonLinesSink:
    """Appends events as single-line JSON; each line is flushed, so a crash loses at most one."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.path = path
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    @classmethod
    def build(cls, context: SinkContext, params: JsonLinesParams) -> JsonLinesSink:
        path = Path(params.path).expanduser()
        return cls(path if path.is_absolute() else context.data_dir / path)

    def emit(self, event: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
