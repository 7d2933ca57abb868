"""Entry-point discovery: the ``policyd`` and ``pydantic`` entry-point groups, scanned in one pass.

A scan reads every installed distribution's metadata (``importlib.metadata``), about 5 ms
per scan with a hundred distributions. pydantic scans its ``pydantic`` group when it builds
its first model, and the plugin host scans ``policyd``'s later. ``policyd serve`` scans both
groups in one pass before pydantic builds anything (:func:`adopt`): when no distribution
offers a pydantic plugin it tells pydantic so (``PYDANTIC_DISABLE_PLUGINS``, unless already
set: the same empty set of plugins, without pydantic's scan), and the plugin host takes
policyd's group from that pass while ``sys.path`` is unchanged (docs/deploy.md, "Start-up").
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

GROUPS = ("policyd", "pydantic")
PYDANTIC_SWITCH = "PYDANTIC_DISABLE_PLUGINS"


@dataclass(frozen=True)
class Found:
    """One entry point of a scanned group, with the distribution that declares it."""

    name: str
    value: str
    group: str
    dist: str
    version: str

    def load(self) -> Any:
        """The object the entry point names (``module`` or ``module:attr.path``)."""
        import importlib.metadata

        return importlib.metadata.EntryPoint(self.name, self.value, self.group).load()


def scan() -> tuple[Found, ...]:
    """Every entry point of :data:`GROUPS` on ``sys.path`` in one pass over the distributions, as
    :func:`importlib.metadata.entry_points` sees them (the first distribution of a name wins)."""
    import importlib.metadata

    every = importlib.metadata.entry_points()  # one pass; select() below only filters it
    found: list[Found] = []
    for group in GROUPS:
        for ep in every.select(group=group):
            dist, version = (ep.dist.name, ep.dist.version) if ep.dist is not None else ("unknown", "unknown")
            found.append(Found(ep.name, ep.value, ep.group, dist, version))
    return tuple(found)


_adopted: dict[tuple[str, ...], tuple[Found, ...]] = {}
"""The pass :func:`adopt` made, under the ``sys.path`` it was made over (at most one)."""


def adopt() -> tuple[Found, ...]:
    """Scan both groups now, before pydantic's first model, and keep the pass for the plugin host; with no
    pydantic plugin installed, set ``PYDANTIC_DISABLE_PLUGINS=__all__`` unless the variable is set."""
    found = scan()
    _adopted.clear()
    _adopted[tuple(sys.path)] = found
    if not any(f.group == "pydantic" for f in found) and PYDANTIC_SWITCH not in os.environ:
        os.environ[PYDANTIC_SWITCH] = "__all__"
    return found


def adopted() -> bool:
    """Whether :func:`adopt`'s pass was made over today's ``sys.path`` (in this process, or in the
    supervisor it was forked from)."""
    return tuple(sys.path) in _adopted


def entry_points(group: str = "policyd") -> list[Found]:
    """``group``'s entry points: from :func:`adopt`'s pass while ``sys.path`` is the same, else scanned now."""
    found = _adopted.get(tuple(sys.path))
    if found is None:
        found = scan()
    return [f for f in found if f.group == group]
