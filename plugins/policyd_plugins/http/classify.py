"""Turns upstream failures into :class:`policyd.errors.UpstreamError` with the right class.

Retryable: 408, 409, 425, 429 (with its Retry-After), 5xx, timeouts, connection
failures and resets, malformed bodies. Not retryable: other 4xx (400, 401, 403, 404,
413, 422...) and content-filter refusals, which would fail the same way again.
Messages quote the upstream's own error text, shortened and with the key redacted.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

from policyd.api import UpstreamError

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
MAX_QUOTED = 300
MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or an HTTP date)."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms:
        try:
            return min(max(float(raw_ms) / 1000, 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if not raw:
        return None
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return min(max(when.timestamp() - now, 0.0), MAX_RETRY_AFTER_S)


def upstream_message(body: bytes | str) -> str:
    """The human part of an error body: ``error.message`` (OpenAI, Anthropic, Gemini) or the text."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]  # Gemini sometimes wraps the error in a list
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed)
        if isinstance(err, dict):
            message = err.get("message") or err.get("type") or err.get("code")
            if message:
                text = str(message)
        elif isinstance(err, str):
            text = err
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


def classify_status(
    provider: str,
    status: int,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    redact: Any = None,
) -> UpstreamError:
    """The error for an HTTP error response. ``redact`` scrubs the key from the quoted text."""
    quoted = upstream_message(body)
    if redact is not None:
        quoted = redact(quoted)
    retryable = status in RETRYABLE_STATUSES or status >= 500
    retry_after = parse_retry_after(headers) if retryable else None
    message = f"HTTP {status}"
    if retry_after is not None:
        message += f" (retry after {retry_after:g} s)"
    return UpstreamError(
        provider, message, retryable=retryable, status=status, retry_after_s=retry_after, detail=quoted
    )


def malformed(provider: str, what: str) -> UpstreamError:
    return UpstreamError(provider, f"malformed response: {what}", retryable=True, status=None)


def refused(provider: str, why: str, detail: str = "") -> UpstreamError:
    """A content-filter refusal: the same prompt would be refused again. ``detail``: the model's own words."""
    return UpstreamError(provider, f"refused by the upstream's content filter: {why}", retryable=False, detail=detail)
