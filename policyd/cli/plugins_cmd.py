"""``policyd plugins``: list loaded plugins with their version, plugin API, origin and what they provide."""

from __future__ import annotations

import argparse
from collections import defaultdict

from policyd.cli.common import add_config_option
from policyd.plugin.compat import API_VERSION
from policyd.plugin.manager import SINGULAR, default_host
from policyd.plugin.settings import read_plugins_section


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugins",
        help="list plugins",
        description="List loaded plugins and what they register (the policy file's plugins.allow/deny apply).",
    )
    add_config_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    section = read_plugins_section(args.config)
    host = default_host(allow=section.allow, deny=section.deny)
    registered = host.collect()
    provides: dict[str, list[str]] = defaultdict(list)
    for (kind, name), plugin in registered.origins.items():
        provides[plugin].append(f"{SINGULAR.get(kind, kind)}:{name}")
    print(f"plugin API {API_VERSION}")
    print(f"{'plugin':<28} {'version':<10} {'api':<5} {'origin':<28} provides")
    for name, info in host.info.items():
        provided = ", ".join(sorted(provides[name])) or "-"
        print(f"{name:<28} {info.version:<10} {info.api or '-':<5} {info.origin:<28} {provided}")
    return 0
