"""``policyd explain``: show the decision for a request without calling any model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from google.protobuf import json_format

from policyd.cli.common import add_config_option
from policyd.config import load
from policyd.engine.explain import explain
from policyd.engine.plan_match import match_request
from policyd.errors import InvalidArgument
from policyd.plugin.settings import host_for
from policyd.server import convert
from policyd.v1 import policyd_pb2 as pb


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="show the decision for a request",
        description="Show the plan, its steps and estimated cost for a request. Calls no model.",
    )
    add_config_option(p)
    p.add_argument("--request", type=Path, help="a CompleteRequest as JSON (the proto's JSON form); - for stdin")
    p.add_argument("--prompt", help="user message (when no --request is given)")
    p.add_argument("--task", default="", help="task label, e.g. coding")
    p.add_argument("--stakes", default="normal", choices=["low", "normal", "high", "critical"])
    p.add_argument("--policy", default="", help="policy name (default: the config's default)")
    p.add_argument("--tenant", default="", help="tenant")
    p.add_argument("--max-cost-usd", type=float, default=None)
    p.add_argument("--max-output-tokens", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def request_message(args: argparse.Namespace) -> pb.CompleteRequest:
    if args.request is not None:
        text = sys.stdin.read() if str(args.request) == "-" else args.request.read_text(encoding="utf-8")
        try:
            return json_format.Parse(text, pb.CompleteRequest())
        except json_format.ParseError as exc:
            raise InvalidArgument("--request", str(exc)) from None
    if not args.prompt:
        raise InvalidArgument("--prompt", "give --prompt or --request")
    msg = pb.CompleteRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content=args.prompt)],
        task=args.task,
        stakes=pb.Stakes.Value(f"STAKES_{args.stakes.upper()}"),
        policy=args.policy,
        tenant=args.tenant,
    )
    if args.max_cost_usd is not None:
        msg.constraints.max_cost_usd = args.max_cost_usd
    if args.max_output_tokens is not None:
        msg.params.max_output_tokens = args.max_output_tokens
    return msg


def run(args: argparse.Namespace) -> int:
    registered = host_for(args.config).collect()
    config = load(args.config, registered)
    msg = request_message(args)
    request = convert.request_from_proto(
        msg, tenant=msg.tenant or config.defaults.tenant, deadline=time.monotonic() + 60
    )
    explanation = explain(config, registered, request, match_request(config, request))
    proto = convert.explanation_to_proto(explanation)
    if args.json:
        print(json.dumps(json_format.MessageToDict(proto), indent=2))
        return 0
    print(f"policy {explanation.policy} (version {explanation.policy_version}), rule {explanation.rule}")
    print(f"strategy {explanation.strategy}: {explanation.reason}")
    for i, step in enumerate(explanation.steps):
        gate = f", gate {step.validator}" if step.validator else ""
        print(
            f"  {i + 1}. {step.role:<10} {step.model or '-':<24} effort {step.effort.value:<6}"
            f" ~${step.estimated_cost_usd:.6f}{gate}"
        )
    print(f"estimated cost: ${explanation.best_usd:.6f} (best) to ${explanation.worst_usd:.6f} (worst)")
    for warning in explanation.warnings:
        print(f"warning: {warning}")
    return 0
