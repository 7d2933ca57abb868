"""``policyd plugins``: list loaded plugins with their version, plugin API, origin and what they provide."""

from __future__ import annotations

import argparse
from collections import defaultdict

from policyd.cli.common import add_config_option
from policyd.plugin.compat import API_VERSION
from policyd.plugin.manager import SINGULAR
from policyd.plugin.settings import host_for


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugins",
        help="list plugins",
        description="List loaded plugins and what they register (the policy file's plugins.allow/deny apply).",
    )
    add_config_option(p)
    p.set_defaults(func=run)


def noun(kind: str) -> str:
    """``strategies`` → ``strategy``, ``decision_sinks`` → ``decision-sink``."""
    return (SINGULAR.get(kind) or kind.removesuffix("s")).replace(" ", "-").replace("_", "-")


def run(args: argparse.Namespace) -> int:
    host = host_for(args.config)
    registered = host.collect()
    provides: dict[str, list[str]] = defaultdict(list)
    for (kind, name), plugin in registered.origins.items():
        provides[plugin].append(f"{noun(kind)}:{name}")
    rows = [("plugin", "version", "api", "origin", "provides")]
    for name, info in host.info.items():
        rows.append((name, info.version, info.api or "-", info.origin, ", ".join(sorted(provides[name])) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print(f"plugin API {API_VERSION}")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4])
    return 0
