"""API keys from environment variables or files, kept out of every log, repr and error.

A key is read from ``api_key_env`` (an environment variable) or ``api_key_file`` (a file,
typically a Kubernetes Secret mount). A file is re-read when it changes, so a rotated
Secret takes effect without a restart. The value lives in a pydantic ``SecretStr``;
``repr`` and ``str`` show only where the key came from.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr


class ApiKey:
    """One provider instance's key; ``reveal()`` is the only way to read it."""

    __slots__ = ("_env", "_file", "_mtime", "_value")

    def __init__(self, *, env: str | None = None, file: str | None = None) -> None:
        self._env = env
        self._file = Path(file) if file else None
        self._mtime: float | None = None
        self._value: SecretStr | None = None
        self._load()

    @property
    def source(self) -> str:
        if self._env:
            return f"environment variable {self._env}"
        if self._file:
            return f"file {self._file}"
        return "no key"

    def _load(self) -> None:
        if self._env:
            value = os.environ.get(self._env, "")
            if not value.strip():
                raise ValueError(f"environment variable {self._env} is not set or empty")
            self._value = SecretStr(value.strip())
        elif self._file:
            try:
                stat = self._file.stat()
                value = self._file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read key file {self._file}: {exc.strerror or type(exc).__name__}") from None
            except UnicodeDecodeError:
                raise ValueError(f"key file {self._file} is not UTF-8 text") from None
            if not value:
                raise ValueError(f"key file {self._file} is empty")
            self._value, self._mtime = SecretStr(value), stat.st_mtime

    def reveal(self) -> str | None:
        """The key's current value (None when no key is configured); a changed file is re-read."""
        if self._file is not None:
            try:
                if self._file.stat().st_mtime != self._mtime:
                    self._load()
            except (OSError, ValueError):
                pass  # keep the last good key; the upstream's 401 will say the rest
        return self._value.get_secret_value() if self._value is not None else None

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced, for messages built from upstream bodies."""
        value = self._value.get_secret_value() if self._value is not None else ""
        return text.replace(value, "[redacted]") if value else text

    def __repr__(self) -> str:
        return f"ApiKey({self.source})"

    __str__ = __repr__
