"""``policyd cache stats`` and ``policyd cache clear [--tenant T]``: look at and empty the response cache.

Both work on the cache directory under ``--data-dir`` whether or not a daemon is
running (SQLite serializes the writers). ``stats`` shows live entries and bytes per
tenant and the counters the daemons saved; ``clear`` removes every entry, or one
tenant's.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from policyd.cache.service import cache_dir
from policyd.cache.stats import CacheStats, Counters, load_totals
from policyd.cache.store import ResponseStore, Usage
from policyd.cli.common import add_config_option, add_data_dir_option
from policyd.config import load
from policyd.daemon import default_data_dir
from policyd.errors import NotFound
from policyd.plugin.settings import host_for


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="inspect or clear the response cache", description=__doc__)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", help="entries, bytes per tenant and hit counters")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    clear = actions.add_parser("clear", help="remove cached answers")
    clear.add_argument("--tenant", default=None, help="remove only this tenant's entries")
    for action in (stats, clear):
        add_config_option(action)
        add_data_dir_option(action)
        action.set_defaults(func=run)


def _open(args: argparse.Namespace) -> ResponseStore:
    directory = cache_dir(args.data_dir or default_data_dir())
    if not directory.is_dir():
        raise NotFound(f"no cache at {directory} (has a daemon run with this --data-dir?)")
    config = load(args.config, host_for(args.config).collect())
    settings = config.raw.cache
    store = ResponseStore(directory, settings, CacheStats())
    if not store.available:
        raise NotFound(f"cannot open the cache at {directory}: {store.stats.disabled_reason}")
    return store


def _mib(n: float) -> str:
    return f"{n / 2**20:.2f} MiB"


def render(usage: Usage, totals: Counters) -> str:
    lines = [
        f"cache     {usage.directory} ({usage.shards} shards, limit {_mib(usage.size_limit_bytes)})",
        f"entries   {usage.entries} ({_mib(usage.bytes)})",
    ]
    for tenant, t in sorted(usage.tenants.items()):
        lines.append(f"  tenant {tenant}: {t.entries} entries ({_mib(t.bytes)})")
    lookups = totals.hits + totals.shared + totals.misses
    rate = f"{(totals.hits + totals.shared) / lookups:.1%}" if lookups else "-"
    lines.append(
        f"calls     {totals.hits} hits, {totals.shared} shared in flight, {totals.misses} misses (hit rate {rate}); "
        f"{totals.bypassed} bypassed, {totals.only_if_cached_misses} only-if-cached misses"
    )
    lines.append(f"saved     ${totals.saved_usd:.6f}")
    lines.append(
        f"writes    {totals.writes} stored, {totals.writes_dropped} dropped; "
        f"{totals.corrupt_evicted} corrupt evicted, {totals.io_errors} disk errors"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        if args.action == "clear":
            removed = store.clear(args.tenant)
            whose = f" of tenant {args.tenant!r}" if args.tenant else ""
            print(f"removed {removed} cached answers{whose} from {store.directory}")
            return 0
        usage = store.usage()
        totals = load_totals(Path(store.directory))
        if args.json:
            print(json.dumps({"usage": asdict(usage), "totals": asdict(totals)}, indent=1))
        else:
            print(render(usage, totals))
        return 0
    finally:
        store.close()
