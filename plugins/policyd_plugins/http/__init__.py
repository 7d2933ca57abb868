"""Shared HTTP plumbing for policyd's provider plugins (OpenAI-compatible, Anthropic, Gemini).

Not a plugin itself: it registers nothing. Provider plugins build on it so that every
upstream gets the same pooled transport, timeouts, SSE reader, error classes and key
handling. Third-party provider plugins may use it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policyd_plugins.http.classify import classify_status, parse_retry_after
from policyd_plugins.http.provider import EventStream, HttpProvider
from policyd_plugins.http.secrets import ApiKey
from policyd_plugins.http.settings import HttpSettings, Timeouts
from policyd_plugins.http.sse import SseDecoder, SseEvent

if TYPE_CHECKING:
    from policyd_plugins.http.transport import HttpTransport

__all__ = [
    "ApiKey",
    "EventStream",
    "HttpProvider",
    "HttpSettings",
    "HttpTransport",
    "SseDecoder",
    "SseEvent",
    "Timeouts",
    "classify_status",
    "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    """``HttpTransport`` is imported on first use, not when a plugin imports this package."""
    if name == "HttpTransport":
        from policyd_plugins.http.transport import HttpTransport

        return HttpTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
