"""Call a running policyd: one Complete, printing the answer, its attempts and its cost.

python examples/complete.py "Write a binary search in Go" --task coding
"""

from __future__ import annotations

import argparse

import grpc

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("prompt")
    parser.add_argument("--task", default="")
    parser.add_argument("--stakes", default="normal", choices=["low", "normal", "high", "critical"])
    parser.add_argument("--target", default="127.0.0.1:50051")
    args = parser.parse_args()
    with grpc.insecure_channel(args.target) as channel:
        stub = policyd_pb2_grpc.PolicyServiceStub(channel)
        resp = stub.Complete(
            pb.CompleteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content=args.prompt)],
                task=args.task,
                stakes=pb.Stakes.Value(f"STAKES_{args.stakes.upper()}"),
            ),
            timeout=30,
        )
    if resp.status in (pb.OUTCOME_STATUS_ACCEPTED, pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED):
        print(resp.output.content)  # only an accepted answer is one to use
    print(f"status {pb.OutcomeStatus.Name(resp.status)}; rule {resp.explanation.rule} ({resp.explanation.strategy})")
    for a in resp.attempts:
        verdict = f" verdict {pb.Verdict.Kind.Name(a.verdict.kind)}" if a.HasField("verdict") else ""
        print(f"  #{a.index} {pb.AttemptRole.Name(a.role):<22} {a.model:<24} ${a.cost_usd:.6f}{verdict}")
    print(f"total ${resp.total_cost_usd:.6f}")


if __name__ == "__main__":
    main()
