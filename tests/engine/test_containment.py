"""A plugin that hangs or raises fails only its own request, named with its version, and soon."""

from __future__ import annotations

import asyncio
import threading
import time
import types

import grpc
import pytest

from policyd.api import (
    AttemptRole,
    Message,
    OutcomeStatus,
    StrategyContext,
    StrategySpec,
    TransformResult,
    TransformSpec,
    ValidatorRef,
    ValidatorSpec,
    Verdict,
    VerdictKind,
    hookimpl,
)
from policyd.errors import ConfigError, PluginTimeout
from policyd.v1 import policyd_pb2 as pb

RELEASE = threading.Event()


async def stuck(ctx: StrategyContext):
    await asyncio.get_running_loop().create_future()  # nobody will ever set it


async def slow_model(ctx: StrategyContext):
    result = await ctx.call("glm-4.5")
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, result.response.message if result.response else None)


async def gated(ctx: StrategyContext):
    result = await ctx.call("glm-4.5")
    assert result.response is not None
    verdict = await ctx.validate(ValidatorRef(name="stuck-judge"), result.response.message)
    return ctx.outcome(OutcomeStatus.ACCEPTED, result.response.message if verdict.kind.passed else None)


async def busy_around_a_call(ctx: StrategyContext):
    """120 ms of its own code before a 400 ms model call and 120 ms after it: 240 ms of own time."""
    await asyncio.sleep(0.12)
    result = await ctx.call("glm-4.5")
    await asyncio.sleep(0.12)
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, result.response.message if result.response else None)


async def hedge_pair(ctx: StrategyContext):
    """Two calls at once; the slow one is cancelled when the fast one answers."""
    slow = asyncio.create_task(ctx.call("claude-opus-4.1"))
    fast = await ctx.call("glm-4.5")
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, fast.response.message if fast.response else None)


class StuckJudge:
    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        await asyncio.sleep(3600)
        return Verdict(VerdictKind.ACCEPT)


def sleepy_transform(request, params):
    RELEASE.wait(10)  # a blocking transform; released when the test ends
    return TransformResult(request)


def _plugin(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))  # type: ignore[arg-type]
    return module


def strategies_plugin() -> types.ModuleType:
    def policyd_register_strategies(register):
        strategies = [("stuck", stuck), ("slow-model", slow_model), ("hedge-pair", hedge_pair)]
        for name, run in [*strategies, ("busy-around-a-call", busy_around_a_call)]:
            register(StrategySpec(name=name, run=run, models=lambda p: ["glm-4.5"]))
        judge = ValidatorRef(name="stuck-judge")
        register(StrategySpec(name="gated", run=gated, models=lambda p: ["glm-4.5"], validators=lambda p: [judge]))

    return _plugin("acme_strategies", policyd_register_strategies=policyd_register_strategies)


def judge_plugin() -> types.ModuleType:
    def policyd_register_validators(register):
        register(ValidatorSpec(name="stuck-judge", factory=lambda ref, params: StuckJudge()))

    def policyd_register_transforms(register):
        register(TransformSpec(name="sleepy", apply=sleepy_transform))

    return _plugin(
        "acme_judges",
        policyd_register_validators=policyd_register_validators,
        policyd_register_transforms=policyd_register_transforms,
    )


def policy(strategy: str, plugins: str = "", transforms: str = "[]") -> str:
    return f"""
    plugins:
      timeouts: {{strategy_ms: 200, validator_ms: 200, transform_ms: 200}}
      {plugins}
    policies:
      default:
        rules:
          - name: only
            plan: {{strategy: {strategy}, transforms: {transforms}}}
    """


SCRIPT = {"glm-4.5": [{"text": "Bonjour", "delay_ms": 400}], "claude-opus-4.1": [{"text": "Salut", "delay_ms": 5000}]}


@pytest.fixture(autouse=True)
def _release_threads():
    RELEASE.clear()
    yield
    RELEASE.set()


@pytest.fixture
def acme(policyd_register):
    policyd_register(strategies_plugin(), "acme_strategies", version="0.3.1")
    policyd_register(judge_plugin(), "acme_judges", version="2.0.0")


def _req() -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")])


async def test_a_hung_strategy_answers_internal_naming_plugin_and_version_long_before_the_deadline(acme, policyd_live):
    live = await policyd_live(policy("stuck"))
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await live.stub.Complete(_req(), timeout=30)
    assert time.monotonic() - started < 5, "stopped by its own-time limit, not the 30 s deadline"
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details().startswith("plugin acme_strategies 0.3.1: strategy 'stuck' ran 200 ms of its own time")
    assert "plugins.timeouts.strategy_ms" in info.value.details()


async def test_the_daemon_keeps_serving_after_a_hung_plugin(acme, policyd_live):
    live = await policyd_live(
        """
        plugins: {timeouts: {strategy_ms: 100}}
        policies:
          default:
            rules:
              - {name: hang, match: {tasks: [hang]}, plan: {strategy: stuck}}
              - {name: rest, plan: {strategy: single, params: {model: glm-4.5}}}
        """,
        script={"glm-4.5": "fine"},
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await live.stub.Complete(pb.CompleteRequest(messages=_req().messages, task="hang"), timeout=10)
    resp = await live.stub.Complete(_req(), timeout=10)
    assert resp.output.content == "fine"


async def test_waiting_on_a_model_does_not_count_against_the_strategy(acme, policyd_engine):
    harness = policyd_engine(policy("slow-model"), script=SCRIPT)
    outcome = await harness.complete("hi")
    assert outcome.status is OutcomeStatus.ACCEPTED_UNVALIDATED, "a 400 ms call under a 200 ms own-time limit"
    assert outcome.output is not None and outcome.output.content == "Bonjour"


async def test_own_time_before_and_after_a_model_call_adds_up_against_the_limit(acme, policyd_engine):
    harness = policyd_engine(policy("busy-around-a-call"), script=SCRIPT)
    started = time.monotonic()
    with pytest.raises(PluginTimeout, match="strategy 'busy-around-a-call' ran 200 ms of its own time"):
        await harness.complete("hi")
    assert time.monotonic() - started < 0.7, "stopped 80 ms into its second stretch, not at the deadline"


async def test_a_hung_validator_is_named_not_the_strategy_that_ran_it(acme, policyd_engine):
    harness = policyd_engine(policy("gated"), script=SCRIPT)
    with pytest.raises(PluginTimeout) as info:
        await harness.complete("hi")
    assert str(info.value).startswith("plugin acme_judges 2.0.0: validator 'stuck-judge' ran 200 ms of its own time")


async def test_a_blocking_transform_times_out_in_its_thread(acme, policyd_engine):
    harness = policyd_engine(policy("slow-model", transforms="[{name: sleepy}]"), script=SCRIPT)
    with pytest.raises(
        PluginTimeout, match=r"plugin acme_judges 2\.0\.0: transform 'sleepy' did not finish within 200 ms"
    ):
        await harness.complete("hi")


async def test_without_an_own_time_limit_the_deadline_stops_the_hung_plugin(acme, policyd_engine):
    harness = policyd_engine(policy("stuck", plugins="per_plugin: {acme_strategies: {strategy_ms: null}}"))
    with pytest.raises(
        PluginTimeout, match="strategy 'stuck' was still running its own code when the request's deadline"
    ):
        await harness.complete("hi", deadline_s=0.3)


async def test_per_plugin_limits_override_the_defaults(acme, policyd_engine):
    harness = policyd_engine(policy("stuck", plugins="per_plugin: {acme_strategies: {strategy_ms: 50}}"))
    with pytest.raises(PluginTimeout, match="ran 50 ms of its own time"):
        await harness.complete("hi")


def test_per_plugin_settings_for_an_unknown_plugin_fail_at_load(acme, policyd_engine):
    with pytest.raises(ConfigError, match=r"plugins\.per_plugin\.acme_strategy: unknown plugin 'acme_strategy'"):
        policyd_engine(policy("stuck", plugins="per_plugin: {acme_strategy: {strategy_ms: 50}}"))


async def test_a_cancelled_call_is_recorded_with_its_input_cost(acme, policyd_engine):
    harness = policyd_engine(policy("hedge-pair"), script=SCRIPT)
    outcome = await harness.complete("hi")
    assert outcome.output is not None and outcome.output.content == "Bonjour"
    by_model = {a.model: a for a in outcome.attempts}
    loser = by_model["claude-opus-4.1"]
    assert loser.error.startswith("cancelled after") and loser.usage_estimated
    opus = harness.config.catalog["claude-opus-4.1"]
    assert loser.input_tokens > 0 and loser.cost_usd == pytest.approx(opus.cost_usd(loser.input_tokens, 0))
    assert outcome.total_cost_usd == pytest.approx(sum(a.cost_usd for a in outcome.attempts))
    assert loser.role is AttemptRole.ANSWER
    assert [c.model.id for c in harness.provider.cancelled] == ["claude-opus-4.1"]


async def test_the_deadline_reaching_a_model_call_is_deadline_exceeded_not_a_hung_plugin(
    acme, policyd_engine, monkeypatch
):
    """The deadline's cancellation arrives while policyd waits on a model for the strategy: not the plugin's fault."""
    import policyd.engine.context as context

    monkeypatch.setattr(context, "DEADLINE_MARGIN_S", 0.0)  # the engine's deadline now fires before the call's own
    script = {"glm-4.5": [{"text": "too late", "delay_ms": 5000}]}
    harness = policyd_engine(policy("slow-model", plugins="per_plugin: {acme_strategies: {strategy_ms: null}}"), script)
    outcome = await harness.complete("hi", deadline_s=0.3)
    assert outcome.status is OutcomeStatus.DEADLINE_EXCEEDED
    assert outcome.attempts[-1].error.startswith("timed out after"), outcome.attempts[-1].error


async def test_the_deadline_finding_a_validator_in_its_own_code_names_the_validator(acme, policyd_engine):
    no_limits = "per_plugin: {acme_strategies: {strategy_ms: null}, acme_judges: {validator_ms: null}}"
    harness = policyd_engine(policy("gated", plugins=no_limits), script={"glm-4.5": "Bonjour"})
    with pytest.raises(PluginTimeout, match=r"plugin acme_judges 2\.0\.0: validator 'stuck-judge' was still running"):
        await harness.complete("hi", deadline_s=0.3)
