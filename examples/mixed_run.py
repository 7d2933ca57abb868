"""Send a mixed run to a running policyd, or report two of its answers as failures.

    python examples/mixed_run.py run      [--address 127.0.0.1:50051]
    python examples/mixed_run.py report   [--address 127.0.0.1:50051]

Pair it with ``examples/ledger-demo.yaml`` and look at ``policyd stats`` before and
after the reports: the reported failures raise the cost per successful outcome.
"""

from __future__ import annotations

import argparse

import grpc

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

JOBS = [
    ("acme", "coding", ""),
    ("acme", "chat", ""),
    ("globex", "coding", ""),
    ("globex", "story", "creative"),
    ("acme", "story", "creative"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    with grpc.insecure_channel(args.address) as channel:
        stub = policyd_pb2_grpc.PolicyServiceStub(channel)
        if args.action == "report":
            for rid in ("demo-0-0", "demo-1-0"):
                stub.ReportOutcome(pb.ReportOutcomeRequest(request_id=rid, success=False, note="tests failed"))
            print("reported demo-0-0 and demo-1-0 (acme, coding) as failures")
            return
        refused = 0
        for r in range(args.rounds):
            for j, (tenant, task, policy) in enumerate(JOBS):
                msg = pb.CompleteRequest(
                    request_id=f"demo-{r}-{j}",
                    tenant=tenant,
                    task=task,
                    policy=policy,
                    messages=[pb.Message(role=pb.ROLE_USER, content=f"round {r}: a {task} job for {tenant}")],
                )
                try:
                    stub.Complete(msg, timeout=30)
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        raise
                    refused += 1
        print(f"sent {args.rounds * len(JOBS)} requests, {refused} refused by a budget")


if __name__ == "__main__":
    main()
