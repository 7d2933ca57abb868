"""A tiny smoke run of the benchmark harness: every process starts, every scenario answers.

Figures are printed, never asserted: CI machines are shared and timing is not a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bench import fake_upstream
from bench.figures import render

ROOT = Path(__file__).resolve().parents[2]


async def test_fake_upstream_speaks_chat_completions_and_fails_on_request():
    server = await asyncio.get_running_loop().create_server(fake_upstream.UpstreamProtocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            async with session.post(url, json={"model": "bench-model", "messages": []}) as resp:
                body = await resp.json()
                assert resp.status == 200
            assert body["choices"][0]["message"]["content"] == "The answer is 42."
            assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}
            async with session.post(url, json={"model": "fail-model", "messages": []}) as resp:
                assert resp.status == 503
    finally:
        server.close()
        await server.wait_closed()


async def test_fake_upstream_streams_17_chunks_whose_pieces_are_the_whole_answer():
    server = await asyncio.get_running_loop().create_server(fake_upstream.UpstreamProtocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            async with session.post(url, json={"model": "bench-model", "stream": True, "messages": []}) as resp:
                assert resp.headers["Content-Type"] == "text/event-stream"
                lines = [line async for line in resp.content if line.startswith(b"data: ")]
    finally:
        server.close()
        await server.wait_closed()
    assert lines[-1] == b"data: [DONE]\n"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    with_choices = [c for c in chunks if c["choices"]]
    assert len(with_choices) == 17 and with_choices[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in with_choices)
    assert text == json.loads(fake_upstream.BODY)["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}


def test_fake_upstream_spaces_a_streams_events_by_the_gap():
    writes = fake_upstream.stream_writes(0.002)
    assert [delay for delay, _ in writes] == [0.002 * i for i in range(len(fake_upstream.STREAM_EVENTS))]
    assert b"".join(piece for _, piece in writes) == fake_upstream.STREAM
    assert fake_upstream.stream_writes(0) == [(0.0, fake_upstream.STREAM)]


@pytest.mark.timeout(330)  # the run itself is given 300 s, under the suite's 120 s default
def test_bench_run_measures_every_scenario(tmp_path):
    out = tmp_path / "results.json"
    args = ["--duration", "0.3", "--repeat", "1", "--warmup", "5", "--soak", "300", "--out", str(out)]
    args += ["--rounds", "5", "--stream-concurrency", "2", "--stream-warmup", "2", "--skip", "frontdoor"]
    # Its own session, so that a timeout (a heavily loaded machine) stops the daemons it started, too.
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "run.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr
    results = json.loads(out.read_text())
    for key in ("echo", "direct", "passthrough", "default", "cache", "failfast"):
        phases = results["scenarios"][key]
        assert phases["open"]["count"] > 0 and phases["open"]["errors"] == 0, key
        assert phases["closed"]["count"] > 0 and phases["closed"]["errors"] == 0, key
    assert results["soak"]["count"] == 300 and results["soak"]["errors"] == 0
    assert 0 < results["soak"]["rss_start_mb"] <= results["soak"]["rss_peak_mb"]
    assert results["soak"]["fsync_max_ms"] > 0, "the data dir's fsync was probed during the soak"
    assert results["soak"]["rss_committed_mb"] > 0, "the RSS was read again once the ledger committed"
    for level in ("c1", "c2"):
        for leg in ("direct", "policyd grpc", "policyd http"):
            assert results["streaming"][level][leg]["count"] > 0 and results["streaming"][level][leg]["failed"] == 0
    assert "(f) soak: 300 requests" in stdout
    assert "passthrough, default config (cache + ledger on) vs echo" in stdout
    assert render(results) in stdout
    summary = stdout.split("summary (load average")[1]
    assert "streaming TTFT added, gRPC, c=1" in summary and "streaming TTFT added, HTTP, c=2" in summary
    assert "frontdoor figures" in summary and "skipped" in summary
