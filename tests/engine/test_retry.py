"""The retry layer: attempts, backoff, Retry-After, the deadline, the retry budget and circuit breakers."""

from __future__ import annotations

import asyncio

import pytest

from policyd.config.retries import BreakerConfig, RetriesConfig
from policyd.engine.retry import CircuitOpen, RetryLayer
from policyd.errors import UpstreamError
from policyd.types import Message, ModelCall, ModelResponse, ModelSpec, Role, Usage

NO_TURN = None
"""The layer is driven alone here: with fixed settings it never reads the Turn."""

MODEL = ModelSpec("m", "up", "m-up", 1.0, 1.0, 1000, "mit")
OK = ModelResponse(Message(Role.ASSISTANT, "ok"), Usage(1, 1))


def call(timeout_s: float | None = None) -> ModelCall:
    return ModelCall(model=MODEL, messages=(Message(Role.USER, "x"),), timeout_s=timeout_s)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def layer(t: FakeTime | None = None, **cfg: object) -> RetryLayer:
    settings = RetriesConfig(**cfg)  # type: ignore[arg-type]
    if t is None:
        return RetryLayer(lambda: settings, rand=lambda: 0.5)
    return RetryLayer(lambda: settings, clock=t.clock, sleep=t.sleep, rand=lambda: 0.5)


class Script:
    """An inner handler answering from a list: an exception is raised, a response returned."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[ModelCall] = []

    async def __call__(self, turn: object, c: ModelCall, on_delta: object) -> ModelResponse:
        self.calls.append(c)
        item = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, ModelResponse)
        return item


def e503(retry_after: float | None = None) -> UpstreamError:
    return UpstreamError("up", "HTTP 503: overloaded", retryable=True, status=503, retry_after_s=retry_after)


async def test_retryable_failures_are_retried_with_growing_jittered_backoff_until_success():
    t = FakeTime()
    inner = Script(e503(), e503(), OK)
    resp = await layer(t, max_attempts=3, backoff_base_s=0.2)(NO_TURN, call(), None, inner)
    assert resp is OK and len(inner.calls) == 3
    assert t.slept == [pytest.approx(0.1), pytest.approx(0.2)]  # half of 0.2, then half of 0.4


async def test_gives_up_after_max_attempts_saying_so():
    inner = Script(e503())
    with pytest.raises(UpstreamError, match=r"HTTP 503: overloaded \(after 3 attempts; 3 attempts made\)"):
        await layer(FakeTime(), max_attempts=3)(NO_TURN, call(), None, inner)
    assert len(inner.calls) == 3


async def test_non_retryable_errors_are_not_retried():
    inner = Script(UpstreamError("up", "HTTP 400: bad", retryable=False, status=400), OK)
    with pytest.raises(UpstreamError, match=r"HTTP 400: bad$"):
        await layer(FakeTime())(NO_TURN, call(), None, inner)
    assert len(inner.calls) == 1


async def test_retry_after_is_waited_and_each_attempt_gets_only_the_time_left():
    t = FakeTime()
    inner = Script(e503(retry_after=2.0), OK)
    await layer(t)(NO_TURN, call(timeout_s=10.0), None, inner)
    assert t.slept == [2.0]
    assert [c.timeout_s for c in inner.calls] == [10.0, pytest.approx(8.0)]


async def test_no_retry_when_retry_after_passes_the_deadline():
    t = FakeTime()
    inner = Script(e503(retry_after=30.0), OK)
    with pytest.raises(UpstreamError, match="would not finish before the deadline"):
        await layer(t)(NO_TURN, call(timeout_s=5.0), None, inner)
    assert len(inner.calls) == 1 and t.slept == []


async def test_never_retries_once_text_was_streamed():
    async def inner(turn, c: ModelCall, on_delta):
        on_delta("partial ")
        raise e503()

    seen: list[str] = []
    with pytest.raises(UpstreamError, match="text was already streamed"):
        await layer(FakeTime())(NO_TURN, call(), seen.append, inner)
    assert seen == ["partial "]


async def test_retry_budget_bounds_extra_upstream_requests_under_a_burst_of_failures():
    rl = layer(
        max_attempts=3, backoff_base_s=0.01, min_retries=3, budget_ratio=0.2, breaker=BreakerConfig(failures=1000)
    )
    sent = 0

    async def inner(turn, c: ModelCall, on_delta):
        nonlocal sent
        sent += 1
        await asyncio.sleep(0.01)
        raise e503()

    results = await asyncio.gather(*(rl(NO_TURN, call(), None, inner) for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, UpstreamError) for r in results)
    budget_denied = [r for r in results if "retry budget exhausted" in str(r)]
    # 20 in flight → at most max(3, 0.2 * 20) = 4 calls retrying, each at most twice more.
    assert 20 < sent <= 20 + 4 * 2
    assert len(budget_denied) >= 16
    assert rl.in_flight == 0 and rl.retrying == 0


async def test_breaker_opens_after_consecutive_failures_then_lets_one_probe_through():
    t = FakeTime()
    rl = layer(t, max_attempts=1, breaker=BreakerConfig(failures=3, open_s=10))
    failing = Script(e503())
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await rl(NO_TURN, call(), None, failing)
    with pytest.raises(CircuitOpen, match=r"circuit open after 3 consecutive failures; next probe in 10\.0 s") as info:
        await rl(NO_TURN, call(), None, failing)
    assert info.value.retryable is False
    assert len(failing.calls) == 3, "an open circuit calls no upstream"

    t.now += 10.0
    gate = asyncio.Event()

    async def slow_ok(turn, c: ModelCall, on_delta):
        await gate.wait()
        return OK

    probe = asyncio.create_task(rl(NO_TURN, call(), None, slow_ok))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen, match="a probe call is in flight"):
        await rl(NO_TURN, call(), None, slow_ok)
    gate.set()
    assert await probe is OK
    assert await rl(NO_TURN, call(), None, Script(OK)) is OK, "a successful probe closes the circuit"


async def test_failed_probe_reopens_and_retry_after_holds_the_circuit_longer():
    t = FakeTime()
    rl = layer(t, max_attempts=1, breaker=BreakerConfig(failures=1, open_s=5))
    with pytest.raises(UpstreamError):
        await rl(NO_TURN, call(), None, Script(e503()))
    t.now += 5.0
    with pytest.raises(UpstreamError, match="HTTP 503"):
        await rl(NO_TURN, call(), None, Script(e503(retry_after=60.0)))  # the probe fails with a Retry-After
    t.now += 30.0
    with pytest.raises(CircuitOpen, match=r"next probe in 30\.0 s"):
        await rl(NO_TURN, call(), None, Script(OK))
    t.now += 30.0
    assert await rl(NO_TURN, call(), None, Script(OK)) is OK


async def test_a_cancelled_probe_lets_the_next_call_probe():
    t = FakeTime()
    rl = layer(t, max_attempts=1, breaker=BreakerConfig(failures=1, open_s=1))
    with pytest.raises(UpstreamError):
        await rl(NO_TURN, call(), None, Script(e503()))
    t.now += 1.0

    async def hang(turn, c: ModelCall, on_delta):
        await asyncio.sleep(3600)

    task = asyncio.create_task(rl(NO_TURN, call(), None, hang))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await rl(NO_TURN, call(), None, Script(OK)) is OK


async def test_non_retryable_answers_close_the_circuit_count():
    t = FakeTime()
    rl = layer(t, max_attempts=1, breaker=BreakerConfig(failures=2))
    with pytest.raises(UpstreamError):
        await rl(NO_TURN, call(), None, Script(e503()))
    with pytest.raises(UpstreamError):
        await rl(NO_TURN, call(), None, Script(UpstreamError("up", "HTTP 400", retryable=False, status=400)))
    with pytest.raises(UpstreamError, match="HTTP 503"):
        await rl(NO_TURN, call(), None, Script(e503()))  # only one consecutive failure again: still closed
    assert rl.breakers["up"].failures == 1


def test_retries_section_is_validated_with_its_key_path(make_config):
    from policyd.errors import ConfigError

    with pytest.raises(ConfigError, match=r"retries\.max_attempts"):
        make_config(
            """
            retries: {max_attempts: 0}
            policies:
              default: {rules: [{name: r, plan: {strategy: single, params: {model: gpt-oss-120b}}}]}
            """
        )


@pytest.mark.parametrize(("scope", "other_model_admitted"), [("provider", False), ("model", True)])
async def test_breaker_scope_decides_whether_a_failing_model_blocks_its_neighbours(scope, other_model_admitted):
    t = FakeTime()
    rl = layer(t, max_attempts=1, breaker=BreakerConfig(failures=2, open_s=10, scope=scope))
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await rl(NO_TURN, call(), None, Script(e503()))
    healthy = ModelSpec("n", "up", "n-up", 1.0, 1.0, 1000, "mit")
    other = ModelCall(model=healthy, messages=(Message(Role.USER, "x"),))
    if other_model_admitted:
        assert await rl(NO_TURN, other, None, Script(OK)) is OK
        with pytest.raises(CircuitOpen):
            await rl(NO_TURN, call(), None, Script(OK))
    else:
        with pytest.raises(CircuitOpen):
            await rl(NO_TURN, other, None, Script(OK))
