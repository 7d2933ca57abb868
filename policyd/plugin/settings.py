"""The policy file's ``plugins`` section: read before plugins load, checked after.

Which entry points load must be known before any plugin is imported, and the rest
of the policy file can only be validated once plugins have registered. So the
``plugins`` section alone is read first; the full load later checks that every
plugin ``per_plugin`` names was loaded, so a typo fails at boot instead of doing
nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policyd.config.loader import _Loader, parse_text
from policyd.config.schema import PluginsConfig
from policyd.plugin.manager import PluginHost, default_host
from policyd.plugin.specs import Registered


def read_plugins_section(path: str | Path | None) -> PluginsConfig:
    """The validated ``plugins`` section of a policy file (defaults without a file)."""
    if path is None:
        return PluginsConfig()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return PluginsConfig()  # the full load reports it, with the reason
    data: Any = parse_text(text, source).get("plugins") or {}
    result: PluginsConfig = _Loader(source, Registered()).validate(PluginsConfig, data, "plugins")
    return result


def host_for(path: str | Path | None, *, entry_points: bool = True) -> PluginHost:
    """The plugin host for a policy file: built-ins, then the entry points its allow/deny lists admit."""
    section = read_plugins_section(path)
    return default_host(entry_points=entry_points, allow=section.allow, deny=section.deny)
