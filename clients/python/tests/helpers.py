"""Request and status helpers shared by the sync and asyncio tests."""

from __future__ import annotations

import time

import grpc

from policyd_client import pb, prompt

ACCEPTED = (pb.OUTCOME_STATUS_ACCEPTED, pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED)


def unique_prompt(name: str, **fields: object) -> pb.CompleteRequest:
    """A prompt no other test sends, so no answer comes from the daemon's cache."""
    return prompt(f"Write a binary search in Python ({name}, {time.monotonic_ns()})", **fields)


def ledger_absent(err: grpc.RpcError) -> bool:
    """UNIMPLEMENTED because the daemon runs no ledger: the only acceptable reason not to answer."""
    if err.code() != grpc.StatusCode.UNIMPLEMENTED:
        return False
    assert "ledger" in (err.details() or ""), f"UNIMPLEMENTED for another reason: {err.details()}"
    return True
