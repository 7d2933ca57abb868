"""OTEL_METRICS_EXPORTER=prometheus: a real scrape endpoint, served only when asked, closed on shutdown."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from policyd.errors import ConfigError
from policyd.telemetry.setup import build_telemetry
from tests import daemon_process
from tests.daemon_process import free_port
from tests.telemetry.support import policy, user


def prometheus_env(port: int, exporters: str = "prometheus") -> dict[str, str]:
    return {
        "OTEL_METRICS_EXPORTER": exporters,
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
    }


async def scrape(port: int) -> dict[str, Any]:
    """GET /metrics as Prometheus does, parsed by prometheus_client's own text-format parser."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = await resp.text()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any, suffix: str = "", **labels: str) -> list[Any]:
    return [
        s
        for s in family.samples
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def occupied() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


async def test_scrape_shows_the_genai_histograms_and_policyd_counters_after_a_complete(traced, upstream):
    port = free_port()
    t = await traced(policy(upstream.base_url), prometheus_env(port), exporters=False)
    assert t.daemon.telemetry.prometheus is not None and t.daemon.telemetry.prometheus.port == port
    resp = await t.stub.Complete(user("write a sort", task="coding"))
    got = await scrape(port)

    duration = got["gen_ai_client_operation_duration_seconds"]
    assert duration.type == "histogram" and duration.documentation == "GenAI operation duration."
    drafter = {"gen_ai_request_model": "drafter-v1", "gen_ai_provider_name": "fixture-http"}
    (count,) = samples(duration, "_count", gen_ai_operation_name="chat", **drafter)
    assert count.value == 1
    buckets = [s.labels["le"] for s in samples(duration, "_bucket", **drafter)]
    assert buckets[0] == "0.01" and buckets[-2:] == ["81.92", "+Inf"]

    usage = got["gen_ai_client_token_usage"]
    assert usage.type == "histogram"
    (input_sum,) = samples(usage, "_sum", gen_ai_token_type="input", **drafter)
    (output_sum,) = samples(usage, "_sum", gen_ai_token_type="output", **drafter)
    assert (input_sum.value, output_sum.value) == (resp.attempts[0].input_tokens, resp.attempts[0].output_tokens)

    cost = got["policyd_cost_USD"]
    assert cost.type == "counter"
    spent = sum(s.value for s in samples(cost, "_total", policyd_rule="checked-coding"))
    assert math.isclose(spent, resp.total_cost_usd, rel_tol=1e-9)
    (outcome,) = samples(got["policyd_outcomes"], "_total", policyd_outcome="accepted-unvalidated")
    assert outcome.value == 1 and outcome.labels["policyd_strategy"] == "draft-validate"
    assert samples(got["policyd_escalations"], "_total", policyd_model="claude-opus-4.1")[0].value == 1

    (target,) = got["target_info"].samples
    assert target.labels["service_name"] == "policyd"
    assert got["process_resident_memory_bytes"].samples[0].value > 0


async def test_endpoint_closes_with_the_daemon_and_frees_its_port(traced, upstream):
    port = free_port()
    t = await traced(policy(upstream.base_url), prometheus_env(port, "otlp,prometheus"), exporters=False)
    assert "process_resident_memory_bytes" in await scrape(port)
    await t.daemon.aclose()
    with pytest.raises(aiohttp.ClientConnectorError):
        await scrape(port)
    restarted = build_telemetry(prometheus_env(port))  # a restarted daemon gets the port back
    assert restarted.prometheus is not None and restarted.prometheus.port == port
    restarted.shutdown_sync()


def test_no_endpoint_unless_prometheus_is_named():
    port = free_port()
    env = {**prometheus_env(port, "none"), "OTEL_TRACES_EXPORTER": "console"}
    tel = build_telemetry(env)
    try:
        assert tel.prometheus is None
        assert port_is_free(port)
    finally:
        tel.shutdown_sync()


def test_a_port_in_use_fails_naming_the_port_variable(occupied):
    with pytest.raises(ConfigError) as err:
        build_telemetry(prometheus_env(occupied))
    assert str(err.value) == (
        f"environment: OTEL_EXPORTER_PROMETHEUS_PORT: cannot serve Prometheus metrics on 127.0.0.1:{occupied}: "
        "Address already in use"
    )


def test_an_address_not_on_this_machine_fails_naming_the_host_variable():
    env = {**prometheus_env(free_port()), "OTEL_EXPORTER_PROMETHEUS_HOST": "192.0.2.1"}  # TEST-NET-1
    with pytest.raises(ConfigError) as err:
        build_telemetry(env)
    assert str(err.value).startswith(
        "environment: OTEL_EXPORTER_PROMETHEUS_HOST: cannot serve Prometheus metrics on 192.0.2.1:"
    )


def test_serve_exits_with_the_error_when_the_port_is_taken(occupied):
    env = {**daemon_process.ENV, **prometheus_env(occupied)}
    result = daemon_process.run(["policyd", "serve", "--listen", "127.0.0.1:0"], env)
    assert result.returncode == 2
    expected = f"environment: OTEL_EXPORTER_PROMETHEUS_PORT: cannot serve Prometheus metrics on 127.0.0.1:{occupied}"
    assert f"policyd: error: {expected}" in result.stderr
    assert "Traceback" not in result.stderr
