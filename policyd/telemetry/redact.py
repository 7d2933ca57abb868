"""The scrubber: removes API keys, bearer tokens and key-bearing URLs from text.

Two nets, because neither is enough alone:

* **known secrets**: the exact values of secret-looking environment variables and of
  provider settings (``api_key``, ``token``, ``*_env`` pointing at a variable...),
  registered at start-up, are replaced wherever they appear;
* **shapes**: ``Authorization: Bearer ...``, ``sk-...``/``AIza...``-style keys,
  ``?key=...``/``&access_token=...`` query parameters and ``user:password@`` in URLs.

It is applied off the hot path: to spans and log records when they are exported (see
:mod:`policyd.telemetry.export`), to log lines when the record is made, to gRPC error
messages and to decision events. One process-wide instance (:data:`SCRUBBER`) serves
them all, since logging is process-wide anyway.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 8
"""Shorter values are not registered as known secrets: they would match ordinary words."""

SECRET_NAME = re.compile(r"(?i)(api[_-]?key|apikey|token|secret|password|passwd|credential|auth)")
"""Environment variable and setting names whose values are secrets."""

_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # (lower-case substrings without which the pattern cannot match, pattern, replacement)
    # Authorization header values, whatever the scheme, and bare bearer tokens.
    (
        ("authorization",),
        re.compile(r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\"',;\n]+"),
        r"\1" + REDACTED,
    ),
    (("bearer",), re.compile(r"(?i)\b(bearer)(\s+|%20)[A-Za-z0-9._~+/=\-]{6,}"), r"\1\2" + REDACTED),
    # user:password@ in URLs.
    (("@",), re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1" + REDACTED + "@"),
    # Key-bearing query parameters (Gemini's ?key=, OAuth access_token=, signed URLs...).
    (
        ("key=", "token=", "auth=", "sig=", "signature=", "secret=", "password=", "code="),
        re.compile(
            r"(?i)([?&;](?:key|api[_-]?key|apikey|access[_-]?token|token|auth|sig|signature|secret|password|code)=)"
            r"[^&#\s\"'<>]+"
        ),
        r"\1" + REDACTED,
    ),
    # "api_key": "...", x-api-key: ..., password=..., in JSON, headers and config dumps.
    (
        ("key", "token", "secret", "passw"),
        re.compile(
            r"(?i)([\"']?\b(?:x-api-key|x-goog-api-key|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|"
            r"client[_-]?secret|secret[_-]?key|password|passwd)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"
        ),
        r"\1" + REDACTED,
    ),
    # Well-known key shapes: OpenAI/Anthropic sk-..., Google AIza..., Groq gsk_, HF hf_, xAI, AWS, GitHub, Slack.
    (
        ("sk-", "aiza", "gsk_", "hf_", "xai-", "r8_", "akia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox"),
        re.compile(
            r"\b(?:sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{30,}|gsk_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|"
            r"xai-[A-Za-z0-9]{20,}|r8_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|"
            r"xox[abpr]-[A-Za-z0-9\-]{10,})"
        ),
        REDACTED,
    ),
)
_TRIGGER = re.compile("|".join(sorted({re.escape(t) for triggers, _, _ in _PATTERNS for t in triggers})))
"""Any substring some pattern needs; most strings have none and skip the patterns."""
CACHE_SIZE = 4096
"""Recently scrubbed strings are remembered: span attributes repeat (models, roles, providers)."""


class Scrubber:
    """Replaces known secret values and secret-shaped text with ``[REDACTED]``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._literals: frozenset[str] = frozenset()
        self._literal_re: re.Pattern[str] | None = None
        self._cache: dict[str, str] = {}

    # ------------------------------------------------------------ known secrets

    def add_secret(self, value: str) -> None:
        """Register an exact secret value; values shorter than :data:`MIN_SECRET_LEN` are ignored."""
        value = value.strip()
        if len(value) < MIN_SECRET_LEN or value in self._literals:
            return
        with self._lock:
            literals = self._literals | {value}
            # Longest first, so a secret that contains another is replaced whole.
            ordered = sorted(literals, key=len, reverse=True)
            self._literal_re = re.compile("|".join(re.escape(v) for v in ordered))
            self._literals = literals
            self._cache = {}

    def add_secrets_from_env(self, environ: Mapping[str, str] | None = None) -> None:
        """Register the values of environment variables whose names look like secrets."""
        env = os.environ if environ is None else environ
        for name, value in env.items():
            if name.endswith("_HEADERS"):
                # OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer x,x-team=y": each value is a credential.
                for part in value.split(","):
                    if "=" in part:
                        self.add_secret(part.split("=", 1)[1])
            elif SECRET_NAME.search(name):
                self.add_secret(value)

    def add_secrets_from_settings(self, settings: Any, environ: Mapping[str, str] | None = None) -> None:
        """Register secrets in provider settings: secret-named fields, the variables ``*_env`` fields
        name and the contents of the files secret-named ``*_file`` fields name."""
        env = os.environ if environ is None else environ
        data = settings.model_dump() if hasattr(settings, "model_dump") else settings
        for name, value in _walk(data):
            if not isinstance(value, str):
                continue
            if name.endswith("_env") and value in env:
                self.add_secret(env[value])
            elif name.endswith("_file") and SECRET_NAME.search(name):
                self.add_secret(_read_small(value))
            elif SECRET_NAME.search(name):
                self.add_secret(value)

    # ------------------------------------------------------------ scrubbing

    def scrub(self, text: str) -> str:
        if len(text) < MIN_SECRET_LEN:
            return text
        cache = self._cache
        done = cache.get(text)
        if done is not None:
            return done
        out = text
        literal_re = self._literal_re
        if literal_re is not None and any(v in out for v in self._literals):
            out = literal_re.sub(REDACTED, out)
        low = out.lower()
        if _TRIGGER.search(low) is not None:
            for triggers, pattern, repl in _PATTERNS:
                if any(t in low for t in triggers):
                    out = pattern.sub(repl, out)
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[text] = out
        return out

    def scrub_value(self, value: Any) -> Any:
        """Scrub an attribute value: strings, and strings inside sequences; other types pass."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) if isinstance(v, str) else v for v in value)
        return value

    def scrub_mapping(self, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        return {k: self.scrub_value(v) for k, v in (attributes or {}).items()}


def _read_small(path: str, limit: int = 64 * 1024) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(limit)
    except (OSError, UnicodeDecodeError):
        return ""


def _walk(data: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _walk(value, str(key))
    elif isinstance(data, (list, tuple)):
        for item in data:
            yield from _walk(item, prefix)
    else:
        yield prefix, data


SCRUBBER = Scrubber()
"""The process-wide scrubber."""


def scrub(text: str) -> str:
    return SCRUBBER.scrub(text)


# ---------------------------------------------------------------- log records

_installed = False


def install_log_scrubber() -> None:
    """Scrub every log record as it is made: message, arguments and exception text.

    Done through the record factory so that it covers every logger and handler,
    including ones configured after this call. Idempotent.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return record
        record.msg, record.args = SCRUBBER.scrub(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = SCRUBBER.scrub(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
