"""policyd's built-in request transforms, registered through the public hooks like any plugin.

``compact-tools`` shrinks tool manifests before any model sees them: verbose tool
definitions are paid for on every call, and most of their words (examples,
defaults, titles, long prose) do not help a model call the tool correctly.
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import TransformSpec, hookimpl
from policyd_plugins.transforms.compact_tools import CompactToolsParams, compact_tools

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_transforms(register: Callable[[TransformSpec], None]) -> None:
    register(TransformSpec(name="compact-tools", apply=compact_tools, params=CompactToolsParams))
