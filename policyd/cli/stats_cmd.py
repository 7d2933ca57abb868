"""``policyd stats``: cost per successful outcome by policy, tenant, task, model or strategy.

Reads the ledger file in the data directory directly (works with the daemon stopped, and
while it runs: WAL lets readers in), or asks a running daemon with ``--address``. A pod's
ledger holds that pod's requests only; fleet-wide figures come from the OTel metrics.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from dataclasses import replace

import grpc
from google.protobuf import json_format

from policyd.cli.common import add_data_dir_option
from policyd.daemon import default_data_dir
from policyd.errors import InvalidArgument, Unavailable
from policyd.ledger.ledger import read_stats
from policyd.ledger.stats import DIMENSIONS
from policyd.ledger.store import ledger_path
from policyd.server.stats import GROUPS, query_from_proto, row_to_proto
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
GROUP_VALUES = {name: value for value, name in GROUPS.items()}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="cost per successful outcome and related figures",
        description="Requests, successes, USD, cost per successful outcome, cache savings, escalation and "
        "validator accept rates, latency p50/p95, grouped as asked, from the ledger.",
    )
    add_data_dir_option(p)
    p.add_argument("--address", help="ask a running daemon (HOST:PORT) instead of reading the ledger file")
    p.add_argument("--by", default="policy,tenant", help=f"group by, comma-separated: {', '.join(DIMENSIONS)}")
    p.add_argument("--window", default="all", help="time window: 30m, 24h, 7d, ... or 'all' (default)")
    p.add_argument("--tenant", default="", help="only this tenant")
    p.add_argument("--policy", default="", help="only this policy")
    p.add_argument("--json", action="store_true", help="print the GetStatsResponse as JSON")
    p.set_defaults(func=run)


def parse_window(text: str) -> int:
    """``90s`` / ``30m`` / ``24h`` / ``7d`` / ``all`` → seconds (0 is all time)."""
    if text in ("all", "0"):
        return 0
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if m is None:
        raise InvalidArgument("--window", f"expected a number and a unit (s, m, h, d) or 'all', got {text!r}")
    return int(m.group(1)) * UNITS[m.group(2)]


def request_from_args(args: argparse.Namespace) -> pb.GetStatsRequest:
    groups = []
    for name in (part.strip() for part in args.by.split(",") if part.strip()):
        if name not in GROUP_VALUES:
            raise InvalidArgument("--by", f"unknown dimension {name!r} (known: {', '.join(DIMENSIONS)})")
        groups.append(GROUP_VALUES[name])
    return pb.GetStatsRequest(
        window_seconds=parse_window(args.window), group_by=groups, tenant=args.tenant, policy=args.policy
    )


def fetch(args: argparse.Namespace, msg: pb.GetStatsRequest) -> pb.GetStatsResponse:
    if args.address:
        with grpc.insecure_channel(args.address) as channel:
            try:
                return policyd_pb2_grpc.PolicyServiceStub(channel).GetStats(msg, timeout=30)
            except grpc.RpcError as exc:
                raise Unavailable(f"{args.address}: {exc.code().name}: {exc.details()}") from None
    path = ledger_path(args.data_dir or default_data_dir())
    query = query_from_proto(msg)
    rows = read_stats(path, query)
    embedding_rows = read_stats(path, replace(query, embeddings=True))
    return pb.GetStatsResponse(
        rows=[row_to_proto(r) for r in rows], embedding_rows=[row_to_proto(r) for r in embedding_rows]
    )


def _rate(part: float, whole: int) -> str:
    return f"{100 * part:.1f}%" if whole else "-"


def table(rows: Iterable[pb.StatsRow], dims: list[str]) -> str:
    head = [*dims, "requests", "successes", "total USD", "USD/success", "saved USD", "escalated", "accepted",
            "p50 ms", "p95 ms"]  # fmt: skip
    body = []
    for r in rows:
        body.append(
            [
                *(r.group.get(d, "") or "-" for d in dims),
                str(r.requests),
                str(r.successes),
                f"{r.total_cost_usd:.6f}",
                f"{r.cost_per_success_usd:.6f}" if r.successes else "-",
                f"{r.saved_usd:.6f}",
                _rate(r.escalation_rate, r.requests),
                _rate(r.validator_accept_rate, r.validations),
                f"{r.latency_p50_ms:.0f}",
                f"{r.latency_p95_ms:.0f}",
            ]
        )
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = []
    for row in [head, *body]:
        cells = [c.ljust(w) if i < len(dims) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    msg = request_from_args(args)
    resp = fetch(args, msg)
    if args.json:
        print(json.dumps(json_format.MessageToDict(resp), indent=2))
        return 0
    if not resp.rows and not resp.embedding_rows:
        print("no requests in the ledger for this window")
        return 0
    dims = [GROUPS[g] for g in msg.group_by]
    if resp.rows:
        print(table(resp.rows, dims))
    if resp.embedding_rows:
        if resp.rows:
            print()
        print("embeddings (Embed requests, kept apart from completions):")
        print(table(resp.embedding_rows, dims))
    return 0
