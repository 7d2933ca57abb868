"""The Turn and the declared pipeline: one decision per request, steps in the declared order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import policyd.engine.explain as explain_module
import policyd.engine.turn as turn_module
from policyd.daemon import DaemonOptions, build_daemon
from policyd.engine import Admit, Engine, Pipeline, Record, Turn
from policyd.engine.pipeline import Around, Call, Finish
from policyd.engine.turn import AttemptRecorded, TurnFinished, TurnStarted
from policyd.errors import ResourceExhausted
from policyd.telemetry.setup import build_telemetry
from policyd.testing import make_request
from policyd.types import Outcome, OutcomeStatus

BUDGETED = """
providers:
  simulated: {kind: simulated, latency_scale: 0}
policies:
  default:
    rules:
      - name: plain
        plan: {strategy: single, params: {model: gpt-oss-120b}}
ledger: {durability: sync}
budgets:
  tenants:
    "*": {daily_usd: 100}
"""

THE_ORDER = [
    "admit:rate-limit",
    "around:decision-span",
    "admit:budget",
    "transform",
    "run",
    "call:trace",
    "call:cache",
    "call:retry",
    "settle",
    "record:call-spans",
    "record:metrics",
    "record:ledger",
    "record:decision-log",
]


@pytest.fixture
async def daemon(tmp_path: Path, write_config: Callable[[str], Path]):
    sinks = "telemetry:\n  decisions:\n    sinks: [{name: jsonl, params: {path: decisions.jsonl}}]\n"
    telemetry = build_telemetry({}, span_exporters=[InMemorySpanExporter()], metric_readers=[InMemoryMetricReader()])
    options = DaemonOptions(
        config_path=str(write_config(BUDGETED + sinks)), data_dir=tmp_path / "data", entry_points=False,
        telemetry=telemetry,
    )  # fmt: skip
    d = build_daemon(options)
    yield d
    await d.aclose()


async def test_the_daemon_declares_every_step_in_one_order(daemon):
    assert daemon.engine.pipeline.order() == THE_ORDER


async def test_a_part_that_is_off_leaves_the_others_in_their_declared_order(tmp_path, write_config):
    plain = BUDGETED.split("ledger:")[0] + "cache: {enabled: false}\n"
    d = build_daemon(DaemonOptions(config_path=str(write_config(plain)), data_dir=tmp_path, entry_points=False))
    try:
        # no budgets, no cache, no exporter (no call spans), no decision sinks
        assert d.engine.pipeline.order() == [
            "admit:rate-limit",
            "around:decision-span",
            "transform",
            "run",
            "call:retry",
            "settle",
            "record:ledger",
        ]
    finally:
        await d.aclose()


async def test_matching_and_explaining_run_once_per_request_with_budgets_on(daemon, monkeypatch):
    calls: Counter[str] = Counter()
    for module, name in ((turn_module, "match_request"), (explain_module, "explain")):
        real = getattr(module, name)

        def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(module, name, counted)
    outcome = await daemon.engine.complete(make_request("hello", tenant="acme"))
    assert outcome.status is OutcomeStatus.ACCEPTED_UNVALIDATED
    assert calls == Counter(match_request=1, explain=1), "the budget step reads the Turn's decision"


async def test_a_reload_during_a_request_does_not_change_the_turns_runtime(make_config):
    from policyd.plugin.manager import default_host

    registered = default_host(entry_points=False).collect()
    first = make_config(BUDGETED.split("ledger:")[0])
    engine = Engine(first, registered)
    turn = engine.turn(make_request("hi"))
    engine.swap(make_config(BUDGETED.split("ledger:")[0].replace("gpt-oss-120b", "glm-4.5")))
    assert turn.config is first and turn.plan.params.model == "gpt-oss-120b"
    assert engine.turn(make_request("hi")).plan.params.model == "glm-4.5"


async def test_a_new_admission_step_is_one_entry_and_reads_the_turn(make_config):
    """What a remote budget store would be: reserve from the Turn's estimate, settle at the real cost."""
    from policyd.plugin.manager import default_host

    registered = default_host(entry_points=False).collect()
    config = make_config(BUDGETED.split("ledger:")[0])
    seen: list[tuple[str, Any]] = []

    async def remote_budget(turn: Turn):
        if turn.request.tenant == "broke":
            raise ResourceExhausted("tenant 'broke' has no budget left")
        seen.append(("reserve", turn.explanation.worst_usd))
        turn.hold(turn.explanation.worst_usd)

        def settle(outcome: Outcome | None) -> None:
            seen.append(("settle", outcome.total_cost_usd if outcome else None))

        return settle

    engine = Engine(config, registered, pipeline=Pipeline(admit=(Admit("remote-budget", remote_budget),)))
    assert engine.pipeline.order()[:1] == ["admit:remote-budget"]
    outcome = await engine.complete(make_request("hello"))
    assert seen[0][0] == "reserve" and seen[0][1] > 0
    assert seen[1] == ("settle", outcome.total_cost_usd)
    with pytest.raises(ResourceExhausted, match="no budget left"):
        await engine.complete(make_request("hello", tenant="broke"))
    assert len(seen) == 2, "a refused request reserves and settles nothing"


async def test_observers_see_typed_events_in_order_and_steps_run_in_declared_order(make_config):
    from policyd.plugin.manager import default_host

    registered = default_host(entry_points=False).collect()
    config = make_config(BUDGETED.split("ledger:")[0])
    trail: list[str] = []

    def admit(name: str):
        async def step(turn: Turn):
            trail.append(f"admit {name}")
            return lambda outcome: trail.append(f"settle {name}")

        return step

    async def around(turn: Turn, rest):
        trail.append("enter")
        outcome = await rest()
        trail.append("leave")
        return outcome

    async def layer(turn, call, on_delta, next):
        trail.append(f"call {call.model.id} for {turn.request.request_id}")
        return await next(turn, call, on_delta)

    def observe(event: object) -> None:
        if isinstance(event, AttemptRecorded):
            trail.append(f"attempt {event.attempt.index} of call {event.call.model.id if event.call else None}")
        else:
            trail.append(type(event).__name__)

    pipeline = Pipeline(
        admit=(Admit("a", admit("a")), Around("span", around), Admit("b", admit("b"))),
        calls=(Call("layer", layer),),
        record=(Record("all", {TurnStarted: observe, AttemptRecorded: observe, TurnFinished: observe}),),
    )
    await Engine(config, registered, pipeline=pipeline).complete(make_request("hello", request_id="r1"))
    assert trail == [
        "TurnStarted",
        "admit a",
        "enter",
        "admit b",
        "call gpt-oss-120b for r1",
        "attempt 0 of call gpt-oss-120b",
        "settle b",
        "leave",
        "settle a",
        "TurnFinished",
    ]


async def test_a_finish_step_stamps_the_answer_in_its_place_among_the_settlements(make_config):
    """An Around that is a Finish (the decision span with tracing off) runs no wrap of its own, yet the
    steps outside it see what it stamped and the steps inside it do not; a failure passes it by."""
    from policyd.plugin.manager import default_host

    registered = default_host(entry_points=False).collect()
    config = make_config(BUDGETED.split("ledger:")[0])
    trail: list[str] = []

    def admit(name: str):
        async def step(turn: Turn):
            if turn.request.tenant == "refused" and name == "b":
                raise ResourceExhausted("no")
            return lambda outcome: trail.append(f"settle {name}: {outcome.trace_id if outcome else None!r}")

        return step

    def stamp(turn: Turn, outcome: Outcome) -> Outcome:
        trail.append("stamp")
        return replace(outcome, trace_id="stamped")

    finish = Finish(stamp)
    pipeline = Pipeline(admit=(Admit("a", admit("a")), Around("span", finish), Admit("b", admit("b"))))
    engine = Engine(config, registered, pipeline=pipeline)
    outcome = await engine.complete(make_request("hello"))
    assert outcome.trace_id == "stamped"
    assert trail == ["settle b: ''", "stamp", "settle a: 'stamped'"]

    trail.clear()
    with pytest.raises(ResourceExhausted):
        await engine.complete(make_request("hello", tenant="refused"))
    assert trail == ["settle a: None"], "a failed request is settled with None and nothing is stamped"

    wrapped = await finish(engine.turn(make_request("hello")), lambda: _answered(outcome))
    assert wrapped.trace_id == "stamped", "called as a Wrap, a Finish does the same"


async def _answered(outcome: Outcome) -> Outcome:
    return replace(outcome, trace_id="")


def test_step_names_are_unique():
    async def noop(turn: Turn) -> None:
        return None

    with pytest.raises(ValueError, match="unique: twice"):
        Pipeline(admit=(Admit("twice", noop), Admit("twice", noop)))


async def test_the_sync_ledger_commits_the_answer_the_caller_gets_latency_stamped_once(daemon):
    import sqlite3

    from policyd.ledger.store import ledger_path

    outcome = await daemon.engine.complete(make_request("hello", request_id="lat-1"))
    assert outcome.latency_ms > 0
    conn = sqlite3.connect(ledger_path(daemon.data_dir))  # committed before the answer left: no flush
    try:
        (stored,) = conn.execute("SELECT latency_ms FROM outcomes WHERE request_id = 'lat-1'").fetchone()
    finally:
        conn.close()
    assert stored == pytest.approx(outcome.latency_ms)
