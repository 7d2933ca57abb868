"""Plugin system: hook specifications, the plugin manager and the registry."""

from __future__ import annotations

import pluggy

PROJECT = "policyd"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]
