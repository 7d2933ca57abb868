"""The caller's intent beside an OpenAI body: ``x-policyd-*`` headers, or ``metadata`` keys.

An OpenAI SDK sends extra headers (``default_headers``, ``extra_headers``) and a
``metadata`` map of strings without any change to its code, so either carries what
the gRPC contract has as fields:

==========================  =========================  ===================================
header                      metadata key               meaning
==========================  =========================  ===================================
``x-policyd-task``          ``policyd_task``           the task rules match on
``x-policyd-stakes``        ``policyd_stakes``         low, normal, high, critical
``x-policyd-labels``        any other key              labels (header: ``k=v, k2=v2``)
``x-policyd-max-cost-usd``  ``policyd_max_cost_usd``   the request's cost cap
``x-policyd-cache``         ``policyd_cache``          default, bypass, refresh, only-if-cached
``x-policyd-tenant``        ``policyd_tenant``         the tenant, only when auth is off
``x-policyd-policy``        ``policyd_policy``         the policy of a direct model call
``x-policyd-request-id``    ``policyd_request_id``     the request id (idempotency, reports)
``x-policyd-deadline-ms``   ``policyd_deadline_ms``    the deadline; else the SDK's timeout
==========================  =========================  ===================================

A header wins over the metadata key of the same meaning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from policyd.errors import InvalidArgument
from policyd.types import CacheMode, Stakes

HEADER_PREFIX = "x-policyd-"
META_PREFIX = "policyd_"
KEYS = ("task", "stakes", "labels", "max_cost_usd", "cache", "tenant", "policy", "request_id", "deadline_ms")
E = TypeVar("E", Stakes, CacheMode)
SDK_TIMEOUT_HEADER = "x-stainless-timeout"
"""Seconds; OpenAI's SDKs send their client timeout with every request."""


@dataclass(frozen=True)
class Intent:
    task: str = ""
    stakes: Stakes = Stakes.NORMAL
    labels: dict[str, str] = field(default_factory=dict)
    max_cost_usd: float | None = None
    cache_mode: CacheMode = CacheMode.DEFAULT
    tenant: str = ""
    policy: str = ""
    request_id: str = ""
    deadline_s: float | None = None


HEADERS = tuple((key, HEADER_PREFIX + key.replace("_", "-")) for key in KEYS)


def _labels_header(value: str, where: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(where, f"expected 'key=value, key2=value2' (got {item.strip()!r})")
        labels[key.strip()] = val.strip()
    return labels


def _positive(value: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgument(where, f"must be a number (got {value!r})") from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidArgument(where, f"must be a positive number (got {value!r})")
    return number


def _enum(kind: type[E], value: str, where: str) -> E:
    try:
        return kind(value.strip().lower())
    except ValueError:
        raise InvalidArgument(where, f"must be one of {', '.join(m.value for m in kind)} (got {value!r})") from None


def _sdk_timeout(headers: Mapping[str, str]) -> float | None:
    """The OpenAI SDK's client timeout, in seconds; an SDK's header we do not own never fails a request."""
    value = headers.get(SDK_TIMEOUT_HEADER)
    if value is None:
        return None
    try:
        return _positive(value, SDK_TIMEOUT_HEADER)
    except InvalidArgument:
        return None


def read_intent(headers: Mapping[str, str], metadata: Mapping[str, str]) -> Intent:
    """Validate the intent; errors name the header or ``metadata.<key>`` at fault."""
    if not metadata and not any(name in headers for _, name in HEADERS):
        return Intent(deadline_s=_sdk_timeout(headers))  # the common case: nothing asked beside the body
    found: dict[str, tuple[str, str]] = {}
    labels: dict[str, str] = {}
    for key, value in metadata.items():
        if key.startswith(META_PREFIX) and key[len(META_PREFIX) :] in KEYS:
            found[key[len(META_PREFIX) :]] = (value, f"metadata.{key}")
        else:
            labels[key] = value
    for key, name in HEADERS:
        if name in headers:
            found[key] = (headers[name], name)
    if "labels" in found:
        labels.update(_labels_header(*found.pop("labels")))
    if any(not k for k in labels):
        raise InvalidArgument("metadata", "label keys must not be empty")
    raw = {key: value for key, (value, _) in found.items()}
    where = {key: name for key, (_, name) in found.items()}
    deadline = _positive(raw["deadline_ms"], where["deadline_ms"]) / 1000 if "deadline_ms" in raw else None
    if deadline is None:
        deadline = _sdk_timeout(headers)
    return Intent(
        task=raw.get("task", ""),
        stakes=_enum(Stakes, raw["stakes"], where["stakes"]) if "stakes" in raw else Stakes.NORMAL,
        labels=labels,
        max_cost_usd=_positive(raw["max_cost_usd"], where["max_cost_usd"]) if "max_cost_usd" in raw else None,
        cache_mode=_enum(CacheMode, raw["cache"], where["cache"]) if "cache" in raw else CacheMode.DEFAULT,
        tenant=raw.get("tenant", ""),
        policy=raw.get("policy", ""),
        request_id=raw.get("request_id", ""),
        deadline_s=deadline,
    )
