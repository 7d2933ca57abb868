"""The plugin API's version, and the check that refuses a plugin written for another one.

A plugin declares the API it was written for with a module (or plugin object)
attribute::

    POLICYD_API = "1.0"

The API version is ``MAJOR.MINOR``. A plugin loads when its major equals policyd's
and its minor is not newer than policyd's: minors only add (a hook, a spec field,
a context method), majors may remove or change. A plugin that declares nothing is
loaded as written for the current API (``policyd plugins`` shows ``-``).
"""

from __future__ import annotations

import re

from policyd.errors import PluginError

API_VERSION = "1.1"
"""The plugin API this policyd provides. ``policyd.api`` and ``docs/plugins.md`` are that API.

1.1 added the embedding names, ``ToolChoice``, the router-file names and ``ExplainContext.excluded_by``/``allowed``."""

API_ATTRIBUTE = "POLICYD_API"
"""The attribute a plugin declares its API version with."""

_FORM = re.compile(r"^(\d+)(?:\.(\d+))?$")


def parse_api_version(text: str) -> tuple[int, int]:
    """``"1"`` → (1, 0); ``"1.2"`` → (1, 2); anything else raises ValueError."""
    found = _FORM.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not an API version like '1' or '1.0'")
    return int(found.group(1)), int(found.group(2) or 0)


def declared_api(plugin: object) -> str | None:
    """The API version a plugin declares, or None."""
    value = getattr(plugin, API_ATTRIBUTE, None)
    return None if value is None else str(value) if isinstance(value, (str, int, float)) else repr(value)


def check_api(plugin: object, label: str, provided: str = API_VERSION) -> str | None:
    """Refuse a plugin whose declared API version this policyd cannot serve.

    ``label`` names the plugin and its version in the error. Returns the declared
    version (None when the plugin declares none).
    """
    declared = declared_api(plugin)
    if declared is None:
        return None
    try:
        wanted = parse_api_version(declared)
    except ValueError as exc:
        raise PluginError(label, f"{API_ATTRIBUTE} = {declared}: {exc}") from None
    have = parse_api_version(provided)
    if wanted[0] != have[0] or wanted[1] > have[1]:
        raise PluginError(
            label,
            f"written for policyd plugin API {declared}, but this policyd provides plugin API {provided}; "
            f"install a version of the plugin made for API {have[0]}.x (up to {provided})",
        )
    return declared
