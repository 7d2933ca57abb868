"""The daemon without a usable data directory serves without a ledger and says so."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from policyd.daemon import DaemonOptions, build_daemon
from policyd.server.app import start_server
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc


async def test_a_data_dir_that_is_a_file_means_no_ledger_and_unimplemented_stats(tmp_path: Path, caplog):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with caplog.at_level(logging.WARNING):
        daemon = build_daemon(DaemonOptions(data_dir=not_a_dir, entry_points=False))
    assert daemon.ledger is None
    assert "running without a ledger" in caplog.text
    running = await start_server(daemon, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = policyd_pb2_grpc.PolicyServiceStub(channel)
            answer = await stub.Complete(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]))
            assert answer.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetStats(pb.GetStatsRequest())
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "needs the ledger" in info.value.details()
    finally:
        await running.server.stop(0)
        await daemon.aclose()
