"""``policyd check FILE``: validate a policy file and print a summary."""

from __future__ import annotations

import argparse
import sys

from policyd.config import Config, load
from policyd.fleet.checks import check_fleet
from policyd.plugin.settings import host_for
from policyd.server.convert import unservable_reason


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate a policy file", description="Validate a policy file in full.")
    p.add_argument("file", nargs="?", default=None, help="policy file (default: the bundled default)")
    p.set_defaults(func=run)


def summary(config: Config) -> str:
    lines = [f"{config.source}: OK (version {config.version})"]
    lines.append(f"providers: {', '.join(f'{n} ({p.kind})' for n, p in config.providers.items())}")
    lines.append(f"models: {len(config.catalog)}")
    for name, policy in config.policies.items():
        default = " (default)" if name == config.defaults.policy else ""
        count = len(policy.rules)
        lines.append(f"policy {name}{default}: {count} rule{'' if count == 1 else 's'}")
        for rule in policy.rules:
            lines.append(f"  - {rule.name}: {rule.plan.strategy} over {', '.join(rule.plan.models) or '-'}")
    return "\n".join(lines)


def warnings(config: Config) -> list[str]:
    """What loads but will not work as one may expect: models no configured provider can serve."""
    return [
        f"warning: model {m.id!r}: {unservable_reason(m, config.providers)}; ListModels omits it"
        for m in config.catalog.values()
        if unservable_reason(m, config.providers)
    ]


def run(args: argparse.Namespace) -> int:
    config = load(args.file, host_for(args.file).collect())
    fleet = check_fleet(config)  # the addresses and secrets a fleet section names must be there
    print(summary(config) + (f"\n{fleet}" if fleet else ""))
    for line in warnings(config):
        print(line, file=sys.stderr)
    return 0
