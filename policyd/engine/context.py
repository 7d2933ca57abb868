"""The strategy context: the one object a strategy works through.

A strategy never talks to a provider directly. It asks the context to call a model
(with a role and an effort) or to run a validator; the context enforces the
request's remaining deadline and budget, records every call as an Attempt and
builds the Outcome. New capabilities become new methods here, so strategy
signatures never change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple

from policyd.config.model import Config, Plan
from policyd.engine import tokens
from policyd.engine.containment import DEADLINE_GRACE_S, Containment, waiting
from policyd.engine.cutoff import Cutoff
from policyd.engine.plan_match import Match, model_allowed
from policyd.engine.stops import OutOfBudget, OutOfTime, StrategyStop, StreamBroken
from policyd.engine.turn import Turn
from policyd.errors import DeadlineExceeded, PolicydError, UpstreamError
from policyd.ids import new_id
from policyd.plugin.attribution import attributed, expect
from policyd.plugin.specs import CallResult, DeltaSink, ValidatorRef, validator_key
from policyd.types import (
    Attempt,
    AttemptRole,
    CacheMode,
    Effort,
    Explanation,
    GenerationParams,
    Message,
    ModelCall,
    ModelResponse,
    ModelSpec,
    Outcome,
    OutcomeStatus,
    Request,
    Role,
    Tool,
    Verdict,
    VerdictKind,
)

log = logging.getLogger(__name__)

CallHandler = Callable[[Turn, ModelCall, "DeltaSink | None"], Awaitable[ModelResponse]]
"""The call chain's entry: ``handler(turn, call, on_delta)`` (see :mod:`policyd.engine.pipeline`)."""

__all__ = [
    "CallHandler",
    "CallResult",
    "OutOfBudget",
    "OutOfTime",
    "StrategyContext",
    "StrategyStop",
    "StreamBroken",
]

MIN_CALL_S = 0.005
"""A call is not started with less time than this left."""
DEADLINE_MARGIN_S = 0.010
"""Kept back from every call's timeout so the answer can still be sent in time."""


class _Window(NamedTuple):
    """How long one call may take: its timeout, the request's time left, and whether a time box refused it."""

    timeout_s: float | None
    remaining_s: float | None
    refused: str = ""
    limited: bool = False
    """The timeout is the provider plugin's own limit (``plugins.timeouts.provider_ms``)."""


class StrategyContext:
    """What a strategy and its validators see of one request: a view of the engine's Turn.

    Built by the engine for each Turn; ``handler`` is the call chain (the pipeline's
    call layers around the provider).
    """

    def __init__(
        self,
        turn: Turn,
        handler: CallHandler,
        containment: Containment | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        match = turn.match
        self.turn = turn
        self.request: Request = turn.request
        self.match: Match = match
        self.plan: Plan = match.rule.plan
        self.params: Any = self.plan.params
        self.config: Config = turn.config
        self.catalog: Mapping[str, ModelSpec] = turn.config.catalog
        self.explanation: Explanation = turn.explanation
        self.max_cost_usd: float = turn.max_cost_usd
        self.deadline = turn.request.deadline
        self.attempts: list[Attempt] = turn.attempts
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.best_output: Message | None = None
        self._answered_by: dict[int, int] = {}
        """id() of each answer a model gave → its attempt's index (to put a rejected draft on its attempt)."""
        """The latest usable answer, returned when the budget or deadline stops the strategy."""
        self.streamed = False
        self._logprobs: dict[Message, tuple[float, ...]] = {}
        self._box: float | None = None
        self._handler = handler
        progress = turn.progress
        self._on_delta = progress.on_delta if progress else None
        self._on_provisional = progress.on_provisional if progress else None
        self._on_settle = progress.on_settle if progress else None
        self._provisional: Message | None = None
        """The draft whose text went out provisionally and awaits its gate's verdict."""
        self._provisional_sent = False
        self._judging = False
        """A validator is running: its model calls are streamed once, with the verdict, when it ends."""
        self._clock = clock
        self._contain = containment

    # ------------------------------------------------------------ limits

    def remaining_s(self) -> float | None:
        return None if self.deadline is None else self.deadline - self._clock()

    def model(self, model_id: str) -> ModelSpec:
        return self.catalog[model_id]

    def excluded_by(self, model_id: str) -> str | None:
        """The constraint that forbids this model for the request, or None."""
        return model_allowed(self.catalog[model_id], self.request.constraints)

    def allowed(self, model_id: str) -> bool:
        return self.excluded_by(model_id) is None

    def estimate_call_usd(
        self,
        model_id: str,
        messages: tuple[Message, ...] | None = None,
        max_output_tokens: int | None = None,
        effort: Effort = Effort.OFF,
        tools: tuple[Tool, ...] | None = None,
    ) -> float:
        """Worst-case cost of one call: estimated input plus the whole output and reasoning allowance."""
        model = self.catalog[model_id]
        msgs = self.request.messages if messages is None else messages
        out = max_output_tokens or self.request.params.max_output_tokens or tokens.DEFAULT_MAX_OUTPUT_TOKENS
        out += tokens.reasoning_allowance(effort, model.thinking)
        offered = self.request.tools if tools is None else tools
        return model.cost_usd(tokens.input_tokens(msgs, offered), out)

    def can_afford(self, usd: float) -> bool:
        return self.spent_usd + self.reserved_usd + usd <= self.max_cost_usd + 1e-12

    @contextlib.contextmanager
    def time_box(self, seconds: float | None) -> Iterator[None]:
        """Bound every call made inside the block to ``seconds`` from now.

        A strategy gives one step (a fail-fast rung and its gate) a share of the
        deadline this way. A call that runs out of boxed time is a failed attempt,
        not the end of the request; the request's own deadline still raises
        :class:`OutOfTime`. Boxes nest: the tighter one wins.
        """
        if seconds is None:
            yield
            return
        outer = self._box
        end = self._clock() + max(0.0, seconds)
        self._box = end if outer is None else min(outer, end)
        try:
            yield
        finally:
            self._box = outer

    def box_remaining_s(self) -> float | None:
        """Seconds left in the innermost :meth:`time_box`, or None outside any box."""
        return None if self._box is None else self._box - self._clock()

    # ------------------------------------------------------------ calls

    async def call(
        self,
        model_id: str,
        *,
        role: AttemptRole = AttemptRole.ANSWER,
        messages: tuple[Message, ...] | None = None,
        effort: Effort = Effort.OFF,
        params: GenerationParams | None = None,
        logprobs: bool = False,
        final: bool = False,
        timeout_s: float | None = None,
        sample_index: int = 0,
        tools: tuple[Tool, ...] | None = None,
        provisional: bool = False,
    ) -> CallResult:
        """Call a model within the remaining deadline and budget; always records an Attempt.

        ``final=True`` marks a call whose answer goes to the caller as is: on a streaming
        request its text is relayed as it arrives. ``provisional=True`` marks a draft a gate
        will judge: when the plan has ``stream_draft: provisional`` its text is relayed as
        provisional, and :meth:`validate` on that draft confirms or retracts it. Raises :class:`OutOfBudget` or
        :class:`OutOfTime` when the call cannot be paid for or finished; an upstream
        failure is returned as a failed :class:`CallResult`. ``tools`` replaces the
        request's tools (a judge is offered none).

        The steps, in order: constraints, money (:meth:`_price`), deadline
        (:meth:`_window`), the call chain with its cache, then the
        attempt at its real cost (:meth:`_settle_call`).
        """
        model = self.catalog[model_id]
        excluded = self.excluded_by(model_id)
        if excluded is not None:
            return CallResult(None, self._record(role, model, effort, error=f"excluded by {excluded}"))
        msgs = self.request.messages if messages is None else messages
        gen = params or self.request.params
        offered = self.request.tools if tools is None else tools
        worst = self._price(model_id, msgs, gen, effort, offered)
        window = self._window(model_id, timeout_s)
        if window.refused:
            return CallResult(None, self._record(role, model, effort, error=window.refused))
        call = ModelCall(
            model=model,
            messages=msgs,
            tools=offered,
            params=gen,
            effort=effort,
            role=role,
            tenant=self.request.tenant,
            task=self.request.task,
            timeout_s=window.timeout_s,
            logprobs=logprobs,
            cache_mode=self.request.cache_mode if self.plan.cache_enabled else CacheMode.BYPASS,
            sample_index=sample_index,
            labels=self.request.labels,
            cache_ttl_s=self.plan.cache_ttl_s,
        )
        sink = self._stream_sink() if final and self._on_delta is not None else None
        tentative = not final and provisional and self._streams_drafts()
        if tentative:
            self._settle_provisional(False, "a new draft replaces it")
            sink = self._provisional_sink()
        self.reserved_usd += worst
        started = self._clock()
        try:  # the call chain (trace · cache · retry · provider) within the window
            with waiting(), Cutoff(window.timeout_s):
                response = await self._handler(self.turn, call, sink)
        except BaseException as exc:
            self.reserved_usd -= worst
            failed = self._unanswered(exc, call, started, window)
            if failed is None:
                raise
            if tentative:
                self._settle_provisional(False, f"the draft from {model_id} failed")
            return failed
        self.reserved_usd -= worst
        result = self._settle_call(call, response, started)
        if tentative and self._provisional_sent and result.response is not None:
            self._provisional = result.response.message
        return result

    def _streams_drafts(self) -> bool:
        return self.plan.stream_draft == "provisional" and self._on_provisional is not None

    def _provisional_sink(self) -> DeltaSink:
        assert self._on_provisional is not None
        outer = self._on_provisional

        def sink(text: str) -> None:
            if text:
                self._provisional_sent = True
                outer(text)

        return sink

    def _settle_provisional(self, confirmed: bool, reason: str = "") -> None:
        """Confirm (it is the answer) or retract the provisional text sent so far, if any."""
        if not self._provisional_sent:
            return
        self._provisional_sent, self._provisional = False, None
        if confirmed:
            self.streamed = True
        if self._on_settle is not None:
            self._on_settle(confirmed, reason)

    def _price(
        self, model_id: str, msgs: tuple[Message, ...], gen: GenerationParams, effort: Effort, offered: tuple[Tool, ...]
    ) -> float:
        """Money: the call's worst case, or :class:`OutOfBudget` when the request cannot pay for it."""
        worst = self.estimate_call_usd(model_id, msgs, gen.max_output_tokens, effort, offered)
        if not self.can_afford(worst):
            raise OutOfBudget(
                f"next call to {model_id} may cost ${worst:.6f}; "
                f"${self.max_cost_usd - self.spent_usd - self.reserved_usd:.6f} of ${self.max_cost_usd:.6f} left"
            )
        return worst

    def _window(self, model_id: str, timeout_s: float | None) -> _Window:
        """Deadline: the call's timeout from the request's deadline and the innermost time box.

        Raises :class:`OutOfTime` when the request has too little time left; a time box
        with too little left refuses only this call.
        """
        remaining = self.remaining_s()
        budget_s = timeout_s
        if remaining is not None:
            if remaining - DEADLINE_MARGIN_S < MIN_CALL_S:
                raise OutOfTime(f"{remaining * 1000:.0f} ms left, too little to call {model_id}")
            left = remaining - DEADLINE_MARGIN_S
            budget_s = left if budget_s is None else min(budget_s, left)
        limit_s = self._provider_limit_s(self.catalog[model_id])
        limited = limit_s is not None and (budget_s is None or limit_s < budget_s)
        if limited:
            budget_s = limit_s
        box_left = self.box_remaining_s()
        if box_left is not None:
            if box_left < MIN_CALL_S:
                return _Window(budget_s, remaining, refused="no time left in this step's share")
            if budget_s is None or box_left < budget_s:
                budget_s, limited = box_left, False
        return _Window(budget_s, remaining, limited=limited)

    def _unanswered(self, exc: BaseException, call: ModelCall, started: float, window: _Window) -> CallResult | None:
        """A call that raised ``exc``: a failed CallResult, or None when ``exc`` goes on (recorded
        first if it is a cancellation); raises :class:`OutOfTime` when the request's own deadline
        (not a box) ran out. Called from the ``except`` that caught ``exc``."""
        if isinstance(exc, asyncio.CancelledError):
            self._cancelled(call, started)
            return None
        if isinstance(exc, TimeoutError):
            elapsed_ms = (self._clock() - started) * 1000
            remaining, budget_s = window.remaining_s, window.timeout_s
            at_deadline = remaining is not None and budget_s is not None and budget_s >= remaining - DEADLINE_MARGIN_S
            error = f"timed out after {elapsed_ms:.0f} ms waiting for {self._provider_named(call.model)}"
            if window.limited:
                error += " (its limit: plugins.timeouts.provider_ms)"
            result = self._failed(call, started, error, at_deadline=at_deadline)
            if at_deadline:
                raise OutOfTime(f"the request's deadline expired while {call.model.id} was answering") from None
            return result
        if isinstance(exc, UpstreamError):
            return self._failed(call, started, exc.summary, detail=exc.detail)
        if isinstance(exc, PolicydError) or not isinstance(exc, Exception):
            return None
        model = call.model
        log.exception("provider %s raised while calling %s", model.provider, model.id)
        return self._failed(call, started, f"{self._provider_named(model)} raised {type(exc).__name__}")

    def _settle_call(self, call: ModelCall, response: ModelResponse, started: float) -> CallResult:
        """The answered call at its real cost (nothing for a cache hit, which saved its price)."""
        model, usage = call.model, response.usage
        latency_ms = response.latency_ms or (self._clock() - started) * 1000
        price = model.cost_usd(usage.input_tokens, usage.output_tokens)
        cost, saved = (0.0, price) if response.cached else (price, 0.0)
        self.spent_usd += cost
        attempt = Attempt(
            index=len(self.attempts),
            role=call.role,
            model=model.id,
            provider=model.provider,
            effort=call.effort,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=cost,
            latency_ms=latency_ms,
            cached=response.cached,
            saved_usd=saved,
            usage_estimated=usage.estimated,
            finish_reason=response.finish_reason,
        )
        self._keep(attempt, call)
        if call.role is not AttemptRole.VALIDATE:
            self.best_output = response.message
            self._answered_by[id(response.message)] = attempt.index
        if response.logprobs is not None:
            self._logprobs[response.message] = response.logprobs
        return CallResult(response, attempt)

    def _cancelled(self, call: ModelCall, started: float) -> None:
        """Record a call cancelled mid-flight (e.g. the losing half of a hedge).

        The upstream has read the prompt, so its input is charged at list price as an
        estimate; output it may have produced is unknown and not charged.
        """
        model = call.model
        used = tokens.input_tokens(call.messages, call.tools)
        cost = model.cost_usd(used, 0)
        self.spent_usd += cost
        elapsed_ms = (self._clock() - started) * 1000
        remaining = self.remaining_s()
        at_deadline = remaining is not None and remaining < DEADLINE_MARGIN_S + 2 * DEADLINE_GRACE_S
        named = self._provider_named(model)
        self._record(
            call.role,
            model,
            call.effort,
            call,
            input_tokens=used,
            cost_usd=cost,
            latency_ms=elapsed_ms,
            usage_estimated=True,
            error=f"timed out after {elapsed_ms:.0f} ms waiting for {named} (the request's deadline)"
            if at_deadline
            else f"cancelled after {elapsed_ms:.0f} ms",
        )

    def logprobs_of(self, message: Message) -> tuple[float, ...] | None:
        """Token log-probabilities of an answer this request received, where the upstream returned them."""
        return self._logprobs.get(message)

    def _stream_sink(self) -> DeltaSink:
        assert self._on_delta is not None
        outer = self._on_delta

        def sink(text: str) -> None:
            if text:
                self.streamed = True
                outer(text)

        return sink

    def _provider_limit_s(self, model: ModelSpec) -> float | None:
        """``plugins.timeouts.provider_ms`` of the plugin serving this model (per_plugin overrides it)."""
        instance = self.config.providers.get(model.provider)
        if instance is None or self._contain is None:
            return None
        return self._contain.limit_s("providers", instance.kind)

    def _provider_named(self, model: ModelSpec) -> str:
        """``provider 'oai' (plugin policyd_openai 0.1.0)``: the instance and the plugin that serves it."""
        instance = self.config.providers.get(model.provider)
        if instance is None or self._contain is None:
            return f"provider {model.provider!r}"
        return f"provider {model.provider!r} (plugin {self._contain.label('providers', instance.kind)})"

    def _failed(
        self, call: ModelCall, started: float, error: str, detail: str = "", *, at_deadline: bool = False
    ) -> CallResult:
        latency_ms = (self._clock() - started) * 1000
        model = call.model
        attempt = self._record(
            call.role, model, call.effort, call, latency_ms=latency_ms, error=error, error_detail=detail
        )
        if self.streamed and at_deadline:  # the request ran out of time: not a broken upstream to retry
            raise DeadlineExceeded(
                f"deadline exceeded after the stream from {model.id} started: {error}",
                metadata={"model": model.id, "provider": model.provider, "spent_usd": f"{self.spent_usd:.6f}"},
            )
        if self.streamed:
            raise StreamBroken(
                f"stream from {model.id} broke after it started: {error}",
                metadata={"model": model.id, "provider": model.provider},
            )
        return CallResult(None, attempt)

    def _record(
        self, role: AttemptRole, model: ModelSpec | None, effort: Effort, call: ModelCall | None = None, **fields: Any
    ) -> Attempt:
        attempt = Attempt(
            index=len(self.attempts),
            role=role,
            model=model.id if model else "",
            provider=model.provider if model else "",
            effort=effort,
            **fields,
        )
        self._keep(attempt, call)
        return attempt

    def _keep(self, attempt: Attempt, call: ModelCall | None) -> None:
        """``attempt`` joins the trail and goes to observers and the caller's progress."""
        self.attempts.append(attempt)
        # A validator's own calls are streamed once, with its verdict (see _attach_verdict).
        self.turn.record(attempt, call, stream=not (self._judging and attempt.role is AttemptRole.VALIDATE))

    # ------------------------------------------------------------ validation

    async def validate(self, ref: ValidatorRef, draft: Message) -> Verdict:
        """Run a validator on a draft and record its verdict on an Attempt.

        A validator that calls a model (through this context, with role VALIDATE) gets
        the verdict on that call's attempt; a free validator gets an attempt of its own.
        """
        validator = self.config.validators[validator_key(ref)]
        before = len(self.attempts)
        contain = self._contain
        label = partial(contain.label, "validators", ref.name) if contain else ref.name
        judge = partial(validator, self, draft)
        self._judging = True
        try:
            with attributed(label, f"validator {ref.name!r}", traceback=True):
                verdict = await (contain.run("validators", ref.name, judge, self.deadline) if contain else judge())
        finally:
            self._judging = False
        verdict = expect(verdict, Verdict, label, f"validator {ref.name!r}")
        if not verdict.validator:
            verdict = replace(verdict, validator=ref.name)
        self._attach_verdict(verdict, before)
        if self._provisional is not None and draft is self._provisional:
            accepted = verdict.kind is VerdictKind.ACCEPT
            why = (
                ""
                if accepted
                else f"{verdict.kind.value} by {verdict.validator}" + (f": {verdict.reason}" if verdict.reason else "")
            )
            self._settle_provisional(accepted, why)
        if verdict.kind is VerdictKind.REPAIR and verdict.repaired is not None:
            self.best_output = verdict.repaired
        elif not verdict.kind.passed:
            self._set_aside(draft)
        return verdict

    def _attach_verdict(self, verdict: Verdict, before: int) -> None:
        """The verdict goes on the validator's own model call since ``before``, or on an attempt of its own.

        Each of the validator's calls reaches the caller's stream once, the judging one with its verdict.
        """
        own = [i for i in range(before, len(self.attempts)) if self.attempts[i].role is AttemptRole.VALIDATE]
        if not own:
            self._record(AttemptRole.VALIDATE, None, Effort.OFF, verdict=verdict)
            return
        *earlier, last = own
        for i in earlier:
            self.turn.stream(self.attempts[i])
        self.attempts[last] = replace(self.attempts[last], verdict=verdict)
        self.turn.record(self.attempts[last])

    def _set_aside(self, draft: Message) -> None:
        """A rejected draft is never the answer: it moves onto its own attempt (``Attempt.output``)."""
        if self.best_output is draft:
            self.best_output = None
        i = self._answered_by.get(id(draft))
        if i is not None:
            self.attempts[i] = replace(self.attempts[i], output=draft)

    def needs_logprobs(self, ref: ValidatorRef | None) -> bool:
        """Whether a validator reads the draft's token log-probabilities (ask the drafter for them)."""
        if ref is None:
            return False
        return bool(getattr(self.config.validators[validator_key(ref)], "needs_logprobs", False))

    # ------------------------------------------------------------ outcome

    def outcome(self, status: OutcomeStatus, output: Message | None = None) -> Outcome:
        """The strategy's answer. ``output`` defaults to the best answer seen so far."""
        out = output if output is not None else self.best_output
        if out is None and status.is_success:
            out = Message(role=Role.ASSISTANT, content="")
        attempts = tuple(self.attempts)
        total: float = 0  # as ``sum``: 0 with no attempts, else the floats added in order
        saved: float = 0
        for a in attempts:
            total += a.cost_usd
            saved += a.saved_usd
        return Outcome(
            request_id=self.request.request_id,
            status=status,
            output=out,
            attempts=attempts,
            explanation=self.explanation,
            total_cost_usd=total,
            saved_usd=saved,
            tenant=self.request.tenant,
            task=self.request.task,
            decision_id=new_id(),
        )
