"""The daemon and its data directory: no ledger only when the policy file says so."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from policyd.daemon import DaemonOptions, build_daemon
from policyd.lifecycle import DataDirError
from policyd.server.app import start_server
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

NO_STORES = """\
version: "1"
providers:
  simulated: {kind: simulated, latency_scale: 0.01}
policies:
  default:
    rules:
      - name: catch-all
        plan: {strategy: single, params: {model: gpt-oss-120b}}
cache: {enabled: false}
ledger: {enabled: false}
"""


def test_a_data_dir_that_is_a_file_stops_the_daemon_naming_it_and_the_fix(tmp_path: Path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataDirError) as info:
        build_daemon(DaemonOptions(data_dir=not_a_dir, entry_points=False))
    message = str(info.value)
    assert f"data directory {not_a_dir} is not writable" in message
    assert "the cache and the ledger live there" in message
    assert "POLICYD_DATA_DIR" in message and "ledger: {enabled: false}" in message


def test_only_the_ledger_off_still_needs_the_directory_for_the_cache(tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(NO_STORES.replace("cache: {enabled: false}\n", ""))
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataDirError, match=r"; the cache lives there"):
        build_daemon(DaemonOptions(config_path=str(policy), data_dir=not_a_dir, entry_points=False))


async def test_cache_and_ledger_off_serve_without_a_data_dir_and_stats_are_unimplemented(tmp_path: Path, caplog):
    policy = tmp_path / "policy.yaml"
    policy.write_text(NO_STORES)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with caplog.at_level(logging.INFO):
        daemon = build_daemon(DaemonOptions(config_path=str(policy), data_dir=not_a_dir, entry_points=False))
    assert daemon.ledger is None and daemon.cache is None
    assert "ledger: disabled by configuration" in caplog.text
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
