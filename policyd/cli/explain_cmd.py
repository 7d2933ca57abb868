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
    p.add_argument("--max-output-tokens", type=int32, default=None)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def int32(text: str) -> int:
    """An argparse type for proto int32 fields: protobuf raises on anything wider."""
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise argparse.ArgumentTypeError(f"{text} is out of range (at most {2**31 - 1})")
    return value


def read_request(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument("--request", f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidArgument("--request", f"{path} is not UTF-8 text") from None


def request_message(args: argparse.Namespace) -> pb.CompleteRequest:
    if args.request is not None:
        try:
            data = json.loads(read_request(args.request))
        except json.JSONDecodeError as exc:
            raise InvalidArgument("--request", f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidArgument("--request", f"expected a JSON object (a CompleteRequest), got {type(data).__name__}")
        try:
            return json_format.ParseDict(data, pb.CompleteRequest())
        except json_format.ParseError as exc:
            # protobuf's messages run over several lines (the list of available fields)
            raise InvalidArgument("--request", " ".join(str(exc).split())) from None
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
        cost = f"~${step.estimated_cost_usd:.6f}"
        if step.best_cost_usd is not None and step.best_cost_usd != step.estimated_cost_usd:
            cost = f"~${step.best_cost_usd:.6f}-{step.estimated_cost_usd:.6f}"
        why = f"  ({step.reason})" if step.reason else ""
        print(f"  {i + 1}. {step.role:<10} {step.model or '-':<24} effort {step.effort.value:<6} {cost}{gate}{why}")
    print(f"estimated cost: ${explanation.best_usd:.6f} (best) to ${explanation.worst_usd:.6f} (worst)")
    for warning in explanation.warnings:
        print(f"warning: {warning}")
    return 0
