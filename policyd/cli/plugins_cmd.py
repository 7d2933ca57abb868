"""``policyd plugins``: list loaded plugins with their version, kinds and origin."""

from __future__ import annotations

import argparse
from collections import defaultdict

from policyd.plugin.manager import SINGULAR, default_host


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list plugins", description="List loaded plugins and what they register.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    host = default_host()
    registered = host.collect()
    provides: dict[str, list[str]] = defaultdict(list)
    for (kind, name), plugin in registered.origins.items():
        provides[plugin].append(f"{SINGULAR.get(kind, kind)}:{name}")
    print(f"{'plugin':<28} {'version':<10} {'origin':<28} provides")
    for name, info in host.info.items():
        print(f"{name:<28} {info.version:<10} {info.origin:<28} {', '.join(sorted(provides[name])) or '-'}")
    return 0
