"""``policyd plugins``: list loaded plugins with their version, plugin API, origin and what they provide."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from typing import Any

from policyd.cli.common import add_config_option
from policyd.plugin.compat import API_VERSION
from policyd.plugin.manager import SINGULAR, PluginHost
from policyd.plugin.settings import host_for


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugins",
        help="list plugins",
        description="List loaded plugins and what they register (the policy file's plugins.allow/deny apply).",
    )
    add_config_option(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (plugin API, and per plugin: name, version, api, origin, hooks, provides)",
    )
    p.set_defaults(func=run)


def noun(kind: str) -> str:
    """``strategies`` → ``strategy``, ``decision_sinks`` → ``decision-sink``."""
    return (SINGULAR.get(kind) or kind.removesuffix("s")).replace(" ", "-").replace("_", "-")


def run(args: argparse.Namespace) -> int:
    host = host_for(args.config)
    registered = host.collect()
    provides: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (kind, name), plugin in registered.origins.items():
        provides[plugin].append((noun(kind), name))
    if args.json:
        print(json.dumps(as_json(host, provides), indent=2))
        return 0
    rows = [("plugin", "version", "api", "origin", "provides")]
    for name, info in host.info.items():
        listed = ", ".join(sorted(f"{kind}:{what}" for kind, what in provides[name])) or "-"
        rows.append((name, info.version, info.api or "-", info.origin, listed))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print(f"plugin API {API_VERSION}")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4])
    return 0


def as_json(host: PluginHost, provides: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """The ``--json`` document; docs/plugins.md describes its fields."""
    hooks: dict[str, list[str]] = defaultdict(list)
    for hook_name in host.hook_names():
        for impl in getattr(host.pm.hook, hook_name).get_hookimpls():
            hooks[impl.plugin_name].append(hook_name)
    return {
        "plugin_api": API_VERSION,
        "plugins": [
            {
                "name": name,
                "version": info.version,
                "api": info.api,
                "origin": info.origin,
                "hooks": sorted(hooks[name]),
                "provides": [{"kind": kind, "name": what} for kind, what in sorted(provides[name])],
            }
            for name, info in host.info.items()
        ],
    }
