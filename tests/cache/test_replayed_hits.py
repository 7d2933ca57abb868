"""Repeated all-hit requests answered from memory (policyd.server.replay), through a live daemon.

Each test runs a real grpc.aio server on 127.0.0.1:0 over a real disk cache, and checks that
a replayed answer is what a full run would have answered: the reply (but its per-request ids
and lookup times), the ledger row, the cache counters, the limits, and what changes it (a new
answer stored by another worker, a cleared cache, a policy reload).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cache_helpers import committed_entries, user
from pydantic import BaseModel, ConfigDict

from policyd.cache.service import cache_dir
from policyd.ledger.store import ledger_path
from policyd.plugin import hookimpl
from policyd.plugin.manager import PluginHost, default_host
from policyd.plugin.specs import DeltaSink, ProviderSpec
from policyd.types import Message, ModelCall, ModelResponse, Role, Usage
from policyd.v1 import policyd_pb2 as pb
from tests import daemon_process


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Numbered:
    """A provider kind ``numbered``: each call it answers is numbered, so a new answer is told apart."""

    def __init__(self) -> None:
        self.count = itertools.count(1)
        self.calls = 0

    @hookimpl
    def policyd_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        plugin = self

        class Provider:
            def __init__(self, name: str, settings: NoSettings) -> None:
                self.name = name

            async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
                plugin.calls += 1
                text = f"{call.model.id} answer #{next(plugin.count)}"
                return ModelResponse(Message(Role.ASSISTANT, text), Usage(input_tokens=40, output_tokens=8))

            async def aclose(self) -> None:
                return None

        register(ProviderSpec(kind="numbered", factory=Provider, settings=NoSettings))


POLICY = """
version: VERSION
cache: {reread_after_s: REREAD}
providers:
  up: {kind: numbered}
models:
  gpt-oss-120b: {provider: up}
  glm-4.5: {provider: up}
limits: LIMITS
policies:
  default:
    rules:
      - name: one
        plan: {strategy: single, params: {model: MODEL}}
  ladder:
    rules:
      - name: ladder
        plan: {strategy: fallback, params: {models: [glm-4.5, gpt-oss-120b]}}
  checked:
    rules:
      - name: checked
        plan:
          strategy: fail-fast
          params: {rungs: [{model: glm-4.5, gate: {name: regex, params: {pattern: 'answer'}}}]}
"""


def policy(*, model: str = "gpt-oss-120b", version: str = "v1", reread: float = 1.0, limits: str = "{}") -> str:
    text = POLICY.replace("VERSION", version).replace("REREAD", str(reread)).replace("LIMITS", limits)
    return text.replace("MODEL", model)


@pytest.fixture
def numbered() -> Numbered:
    return Numbered()


@pytest.fixture
def host(numbered: Numbered) -> PluginHost:
    h = default_host(entry_points=False)
    h.add(numbered, "numbered-test", version="test", origin="direct")
    return h


PER_REQUEST = ("request_id", "decision_id")


def shared_part(resp: pb.CompleteResponse) -> pb.CompleteResponse:
    """The reply without what differs from request to request (ids, each attempt's lookup time)."""
    out = pb.CompleteResponse()
    out.CopyFrom(resp)
    for name in PER_REQUEST:
        out.ClearField(name)  # type: ignore[arg-type]
    for a in out.attempts:
        a.ClearField("latency_ms")
    return out


def ledger_rows(data_dir: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(ledger_path(data_dir))
    try:
        return conn.execute(
            "SELECT o.request_id, o.decision_id, o.status, o.cost_usd, o.saved_usd, a.cached, a.cost_usd, "
            "a.saved_usd, a.model FROM outcomes o JOIN attempts a ON a.outcome_seq = o.seq ORDER BY o.seq"
        ).fetchall()
    finally:
        conn.close()


async def test_a_repeat_of_an_all_hit_request_is_replayed_with_the_answer_a_full_run_gives(live, host, numbered):
    daemon, running, stub = await live(policy(), host=host)
    memo = running.servicer.replays
    first = await stub.Complete(user("explain binary search"))  # a miss: paid, stored
    second = await stub.Complete(user("explain binary search"))  # a hit through the strategy: remembered
    assert memo.replayed == 0 and len(memo) == 1
    replies = [await stub.Complete(user("explain binary search")) for _ in range(3)]
    assert memo.replayed == 3
    assert numbered.calls == 1
    assert not first.attempts[0].cached and second.attempts[0].cached
    for reply in replies:
        assert shared_part(reply) == shared_part(second)
        assert reply.attempts[0].cached and reply.total_cost_usd == 0 and reply.saved_usd == second.saved_usd
        assert reply.output.content == first.output.content
        assert 0 < reply.attempts[0].latency_ms < 1000
    ids = {r.request_id for r in (second, *replies)} | {r.decision_id for r in (second, *replies)}
    assert len(ids) == 8, "every request has its own request id and decision id"
    assert daemon.cache.counters().hits == 4, "each replay counts as the hit it is"
    await daemon.ledger.flush()
    rows = ledger_rows(daemon.data_dir)
    assert len(rows) == 5
    for reply, row in zip((second, *replies), rows[1:], strict=True):
        assert row[:2] == (reply.request_id, reply.decision_id)
    assert {row[2:] for row in rows[1:]} == {rows[1][2:]}, "replayed rows are those of a full-run hit"
    assert rows[1][5] == 1 and rows[1][6] == 0 and rows[1][7] > 0


async def test_a_new_answer_stored_by_another_worker_is_answered_once_this_one_rereads(live, host, numbered, tmp_path):
    data = tmp_path / "data"
    daemon_a, running_a, stub_a = await live(policy(reread=0.2), host=host, data_dir=data)
    daemon_b, _, stub_b = await live(policy(reread=0.2), host=host, data_dir=data)  # a second worker, same cache
    msg = user("what is a monad")
    old = [await stub_a.Complete(msg) for _ in range(3)]
    assert running_a.servicer.replays.replayed == 1
    assert {r.output.content for r in old} == {"gpt-oss-120b answer #1"}
    # Worker a's own write of answer #1 lands first: two workers' writes of one key land in the order
    # they commit, and a later commit of the older answer would stand (a race this test is not about).
    await asyncio.to_thread(daemon_a.cache.writer.flush)
    fresh = await stub_b.Complete(user("what is a monad", cache_mode=pb.CACHE_MODE_REFRESH))
    assert fresh.output.content == "gpt-oss-120b answer #2"
    await asyncio.to_thread(daemon_b.cache.writer.flush)  # worker b's answer is on disk
    # Within reread_after_s (0.2 s) worker a reads it; a loaded machine may take longer to get there.
    deadline = time.monotonic() + 10
    while (await stub_a.Complete(msg)).output.content != "gpt-oss-120b answer #2":
        assert time.monotonic() < deadline, "worker a never read worker b's new answer"
        await asyncio.sleep(0.05)
    after = [await stub_a.Complete(msg) for _ in range(3)]
    assert {r.output.content for r in after} == {"gpt-oss-120b answer #2"}
    assert all(r.attempts[0].cached for r in after) and numbered.calls == 2


async def test_policyd_cache_clear_in_another_process_ends_the_replays(live, host, numbered, tmp_path):
    data = tmp_path / "data"
    _, running, stub = await live(policy(reread=0.2), host=host, data_dir=data)
    msg = user("name three sorting algorithms")
    for _ in range(3):
        await stub.Complete(msg)
    assert running.servicer.replays.replayed == 1
    await asyncio.sleep(0.1)  # the writer's batch reaches the disk
    cleared = await asyncio.to_thread(daemon_process.run, ["policyd", "cache", "clear", "--data-dir", str(data)])
    assert cleared.returncode == 0, cleared.stderr
    assert committed_entries(cache_dir(data)) == 0
    await asyncio.sleep(0.3)
    reply = await stub.Complete(msg)
    assert not reply.attempts[0].cached and reply.output.content == "gpt-oss-120b answer #2"
    assert numbered.calls == 2


async def test_a_policy_reload_answers_by_the_new_policy_at_once(live, host, numbered):
    daemon, running, stub = await live(policy(), host=host)
    msg = user("summarise the news")
    for _ in range(3):
        await stub.Complete(msg)
    assert running.servicer.replays.replayed == 1
    new = textwrap.dedent(policy(model="glm-4.5", version="v2"))
    await asyncio.to_thread(Path(daemon.options.config_path).write_text, new)
    assert await running.reloader.reload("test")
    reply = await stub.Complete(msg)
    assert reply.output.content == "glm-4.5 answer #2" and not reply.attempts[0].cached
    assert reply.explanation.policy_version == "v2"
    again = [await stub.Complete(msg) for _ in range(2)]
    assert [r.explanation.policy_version for r in again] == ["v2", "v2"]
    assert all(r.output.content == "glm-4.5 answer #2" for r in again)
    assert running.servicer.replays.replayed == 2


async def test_rate_limits_still_refuse_a_replayed_request(live, host):
    _, running, stub = await live(policy(limits="{rate: {requests_per_minute: 4}}"), host=host)
    msg = user("rate limited prompt")
    for _ in range(4):
        await stub.Complete(msg)
    assert running.servicer.replays.replayed == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Complete(msg)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_tenants_and_bodies_are_remembered_apart(live, host, numbered):
    _, running, stub = await live(policy(), host=host)
    replies = [await stub.Complete(user("shared prompt", tenant=tenant)) for tenant in ("acme", "globex") * 3]
    assert [r.attempts[0].cached for r in replies] == [False, False, True, True, True, True]
    assert numbered.calls == 2, "one paid call per tenant"
    assert running.servicer.replays.replayed == 2
    other = await stub.Complete(user("shared prompt", tenant="acme", task="other task"))
    assert not other.attempts[0].cached and numbered.calls == 3


async def test_only_replayable_strategies_are_replayed_and_fallback_is(live, host, numbered):
    _, running, stub = await live(policy(), host=host)
    memo = running.servicer.replays
    for _ in range(3):
        ladder = await stub.Complete(user("ladder prompt", policy="ladder"))
    assert memo.replayed == 1 and ladder.output.content == "glm-4.5 answer #1"
    for _ in range(3):
        checked = await stub.Complete(user("gated prompt", policy="checked"))
    assert memo.replayed == 1, "fail-fast (its gate runs a validator) is not declared replayable"
    assert checked.status == pb.OUTCOME_STATUS_ACCEPTED


async def test_calls_with_an_idempotency_key_or_a_refresh_are_not_replayed(live, host, numbered):
    _, running, stub = await live(policy(), host=host)
    for i in range(3):
        await stub.Complete(user("keyed prompt", request_id=f"key-{i}"))
    for _ in range(3):
        await stub.Complete(user("refreshed prompt", cache_mode=pb.CACHE_MODE_REFRESH))
    assert running.servicer.replays.replayed == 0
    assert numbered.calls == 4


async def test_a_replay_carries_the_callers_trace_id(live, host):
    _, running, stub = await live(policy(), host=host)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    metadata = (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),)
    replies = [await stub.Complete(user("traced prompt"), metadata=metadata) for _ in range(3)]
    assert running.servicer.replays.replayed == 1
    assert [r.trace_id for r in replies] == [trace_id] * 3
    assert shared_part(replies[2]) == shared_part(replies[1])


async def test_replays_under_a_budget_reserve_and_settle_like_a_full_hit(live, host):
    daemon, running, stub = await live(policy() + "budgets: {tenants: {'*': {daily_usd: 5.0}}}\n", host=host)
    replies = [await stub.Complete(user("budgeted prompt", tenant="acme")) for _ in range(4)]
    assert running.servicer.replays.replayed == 2
    assert shared_part(replies[3]) == shared_part(replies[1])
    await daemon.ledger.flush()
    rows = ledger_rows(daemon.data_dir)
    assert [row[3] for row in rows] == [replies[0].total_cost_usd, 0.0, 0.0, 0.0]


async def test_the_memo_keeps_at_most_its_bound_dropping_the_oldest(live, host):
    _, running, stub = await live(policy(), host=host)
    memo = running.servicer.replays
    memo.max_entries = 2
    for prompt in ("first", "second", "third"):
        for _ in range(2):
            await stub.Complete(user(prompt))
    assert len(memo) == 2
    await stub.Complete(user("third"))
    await stub.Complete(user("first"))  # forgotten: a hit through the strategy again, remembered again
    assert memo.replayed == 1 and len(memo) == 2


class Collect:
    """A decision sink keeping the events it receives."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def emit(self, event: dict[str, object]) -> None:
        self.events.append(dict(event))

    def close(self) -> None:
        return None


async def test_the_decision_log_has_one_event_per_replayed_request(live, host):
    from policyd.plugin.specs import DecisionSinkSpec, NoParams

    sink = Collect()

    class Sinks:
        @hookimpl
        def policyd_register_decision_sinks(self, register: Callable[[DecisionSinkSpec], None]) -> None:
            register(DecisionSinkSpec(name="collect", factory=lambda ctx, params: sink, params=NoParams))

    host.add(Sinks(), "collector", version="1.0", origin="direct")
    text = policy() + "telemetry:\n  decisions:\n    sinks: [{name: collect}]\n"
    _, running, stub = await live(text, host=host)
    replies = [await stub.Complete(user("logged prompt")) for _ in range(4)]
    assert running.servicer.replays.replayed == 2
    for _ in range(200):
        if len(sink.events) == 4:
            break
        await asyncio.sleep(0.01)
    assert [e["decision_id"] for e in sink.events] == [r.decision_id for r in replies]
    assert [e["request_id"] for e in sink.events] == [r.request_id for r in replies]
    assert {str(e["models"]) for e in sink.events} == {"['gpt-oss-120b']"}

    def shared(event: dict[str, object]) -> dict[str, object]:
        per_request = ("timestamp", "decision_id", "request_id", "latency_ms", "attempts")
        attempts = [{k: v for k, v in a.items() if k != "latency_ms"} for a in event["attempts"]]  # type: ignore[attr-defined]
        return {**{k: v for k, v in event.items() if k not in per_request}, "attempts": attempts}

    assert shared(sink.events[3]) == shared(sink.events[1]), "a replay's event is a full-run hit's"
