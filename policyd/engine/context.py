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
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from policyd.config.loader import validator_key
from policyd.config.model import Config, Plan
from policyd.engine import tokens
from policyd.engine.containment import DEADLINE_GRACE_S, Containment, waiting
from policyd.engine.plan_match import Match, model_allowed
from policyd.errors import DeadlineExceeded, PluginError, PolicydError, UpstreamError
from policyd.ids import new_id
from policyd.plugin.specs import DeltaSink, Progress, ValidatorRef
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

CallHandler = Callable[[ModelCall, "DeltaSink | None"], Awaitable[ModelResponse]]

MIN_CALL_S = 0.005
"""A call is not started with less time than this left."""
DEADLINE_MARGIN_S = 0.010
"""Kept back from every call's timeout so the answer can still be sent in time."""


class StrategyStop(PolicydError):
    """Raised by the context when the request cannot go on; the engine makes it an Outcome."""

    status: OutcomeStatus


class OutOfBudget(StrategyStop):
    status = OutcomeStatus.BUDGET_EXHAUSTED


class OutOfTime(StrategyStop):
    status = OutcomeStatus.DEADLINE_EXCEEDED


class StreamBroken(PolicydError):
    """A call that had already streamed text to the caller failed: the stream must end in error."""

    reason = "STREAM_BROKEN"


@dataclass(frozen=True)
class CallResult:
    """What ``ctx.call`` answers: the response (None on failure) and its recorded attempt."""

    response: ModelResponse | None
    attempt: Attempt

    @property
    def ok(self) -> bool:
        return self.response is not None

    @property
    def text(self) -> str:
        return self.response.message.content if self.response else ""


class StrategyContext:
    def __init__(
        self,
        *,
        request: Request,
        match: Match,
        config: Config,
        handler: CallHandler,
        explanation: Explanation,
        max_cost_usd: float,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
        containment: Containment | None = None,
    ) -> None:
        self.request = request
        self.match = match
        self.plan: Plan = match.plan
        self.params: Any = match.plan.params
        self.config = config
        self.catalog: Mapping[str, ModelSpec] = config.catalog
        self.explanation = explanation
        self.max_cost_usd = max_cost_usd
        self.deadline = request.deadline
        self.attempts: list[Attempt] = []
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
        self._on_delta = progress.on_delta if progress else None
        self._on_attempt = progress.on_attempt if progress else None
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
    ) -> CallResult:
        """Call a model within the remaining deadline and budget; always records an Attempt.

        ``final=True`` marks a call whose answer goes to the caller as is: on a streaming
        request its text is relayed as it arrives. Raises :class:`OutOfBudget` or
        :class:`OutOfTime` when the call cannot be paid for or finished; an upstream
        failure is returned as a failed :class:`CallResult`. ``tools`` replaces the
        request's tools (a judge is offered none).
        """
        model = self.catalog[model_id]
        excluded = self.excluded_by(model_id)
        if excluded is not None:
            return CallResult(None, self._record(role, model, effort, error=f"excluded by {excluded}"))
        msgs = self.request.messages if messages is None else messages
        gen = params or self.request.params
        offered = self.request.tools if tools is None else tools
        worst = self.estimate_call_usd(model_id, msgs, gen.max_output_tokens, effort, offered)
        if not self.can_afford(worst):
            raise OutOfBudget(
                f"next call to {model_id} may cost ${worst:.6f}; "
                f"${self.max_cost_usd - self.spent_usd - self.reserved_usd:.6f} of ${self.max_cost_usd:.6f} left"
            )
        remaining = self.remaining_s()
        budget_s = timeout_s
        if remaining is not None:
            if remaining - DEADLINE_MARGIN_S < MIN_CALL_S:
                raise OutOfTime(f"{remaining * 1000:.0f} ms left, too little to call {model_id}")
            left = remaining - DEADLINE_MARGIN_S
            budget_s = left if budget_s is None else min(budget_s, left)
        limit_s = self._provider_limit_s(model)
        limited = limit_s is not None and (budget_s is None or limit_s < budget_s)
        if limited:
            budget_s = limit_s
        box_left = self.box_remaining_s()
        if box_left is not None:
            if box_left < MIN_CALL_S:
                return CallResult(None, self._record(role, model, effort, error="no time left in this step's share"))
            budget_s = box_left if budget_s is None else min(budget_s, box_left)
        call = ModelCall(
            model=model,
            messages=msgs,
            tools=offered,
            params=gen,
            effort=effort,
            role=role,
            tenant=self.request.tenant,
            task=self.request.task,
            timeout_s=budget_s,
            logprobs=logprobs,
            cache_mode=self.request.cache_mode if self.plan.cache_enabled else CacheMode.BYPASS,
            sample_index=sample_index,
            labels=self.request.labels,
            cache_ttl_s=self.plan.cache_ttl_s,
        )
        sink = self._stream_sink() if final and self._on_delta is not None else None
        self.reserved_usd += worst
        started = self._clock()
        try:
            with waiting():
                async with asyncio.timeout(budget_s):
                    response = await self._handler(call, sink)
        except asyncio.CancelledError:
            self._cancelled(role, model, effort, started, msgs, offered)
            raise
        except TimeoutError:
            elapsed_ms = (self._clock() - started) * 1000
            at_deadline = remaining is not None and budget_s is not None and budget_s >= remaining - DEADLINE_MARGIN_S
            error = f"timed out after {elapsed_ms:.0f} ms waiting for {self._provider_named(model)}"
            if limited and budget_s == limit_s:
                error += " (its limit: plugins.timeouts.provider_ms)"
            result = self._failed(role, model, effort, started, error, at_deadline=at_deadline)
            if at_deadline:
                raise OutOfTime(f"the request's deadline expired while {model_id} was answering") from None
            return result
        except UpstreamError as exc:
            return self._failed(role, model, effort, started, exc.summary, detail=exc.detail)
        except PolicydError:
            raise
        except Exception as exc:
            log.exception("provider %s raised while calling %s", model.provider, model_id)
            named = self._provider_named(model)
            return self._failed(role, model, effort, started, f"{named} raised {type(exc).__name__}")
        finally:
            self.reserved_usd -= worst
        latency_ms = response.latency_ms or (self._clock() - started) * 1000
        cost = 0.0 if response.cached else model.cost_usd(response.usage.input_tokens, response.usage.output_tokens)
        saved = model.cost_usd(response.usage.input_tokens, response.usage.output_tokens) if response.cached else 0.0
        self.spent_usd += cost
        attempt = self._record(
            role,
            model,
            effort,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            cost_usd=cost,
            latency_ms=latency_ms,
            cached=response.cached,
            saved_usd=saved,
            usage_estimated=response.usage.estimated,
            finish_reason=response.finish_reason,
        )
        if role is not AttemptRole.VALIDATE:
            self.best_output = response.message
            self._answered_by[id(response.message)] = attempt.index
        if response.logprobs is not None:
            self._logprobs[response.message] = response.logprobs
        return CallResult(response, attempt)

    def _cancelled(
        self,
        role: AttemptRole,
        model: ModelSpec,
        effort: Effort,
        started: float,
        messages: tuple[Message, ...],
        offered: tuple[Tool, ...],
    ) -> None:
        """Record a call cancelled mid-flight (e.g. the losing half of a hedge).

        The upstream has read the prompt, so its input is charged at list price as an
        estimate; output it may have produced is unknown and not charged.
        """
        used = tokens.input_tokens(messages, offered)
        cost = model.cost_usd(used, 0)
        self.spent_usd += cost
        elapsed_ms = (self._clock() - started) * 1000
        remaining = self.remaining_s()
        at_deadline = remaining is not None and remaining < DEADLINE_MARGIN_S + 2 * DEADLINE_GRACE_S
        named = self._provider_named(model)
        self._record(
            role,
            model,
            effort,
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
        self,
        role: AttemptRole,
        model: ModelSpec,
        effort: Effort,
        started: float,
        error: str,
        detail: str = "",
        *,
        at_deadline: bool = False,
    ) -> CallResult:
        latency_ms = (self._clock() - started) * 1000
        attempt = self._record(role, model, effort, latency_ms=latency_ms, error=error, error_detail=detail)
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

    def _record(self, role: AttemptRole, model: ModelSpec | None, effort: Effort, **fields: Any) -> Attempt:
        attempt = Attempt(
            index=len(self.attempts),
            role=role,
            model=model.id if model else "",
            provider=model.provider if model else "",
            effort=effort,
            **fields,
        )
        self.attempts.append(attempt)
        if self._on_attempt is not None and not (self._judging and role is AttemptRole.VALIDATE):
            self._on_attempt(attempt)
        return attempt

    # ------------------------------------------------------------ validation

    async def validate(self, ref: ValidatorRef, draft: Message) -> Verdict:
        """Run a validator on a draft and record its verdict on an Attempt.

        A validator that calls a model (through this context, with role VALIDATE) gets
        the verdict on that call's attempt; a free validator gets an attempt of its own.
        """
        validator = self.config.validators[validator_key(ref)]
        before = len(self.attempts)
        label = self._contain.label("validators", ref.name) if self._contain else ref.name
        self._judging = True
        try:
            judge = partial(validator, self, draft)
            contain = self._contain
            verdict = await (contain.run("validators", ref.name, judge, self.deadline) if contain else judge())
        except PolicydError:
            raise
        except Exception as exc:
            log.exception("validator %s raised", ref.name)
            raise PluginError(label, f"validator {ref.name!r} raised {type(exc).__name__}") from exc
        finally:
            self._judging = False
        if not isinstance(verdict, Verdict):
            raise PluginError(label, f"validator {ref.name!r} returned {type(verdict).__name__}, not Verdict")
        if not verdict.validator:
            verdict = replace(verdict, validator=ref.name)
        own = [i for i in range(before, len(self.attempts)) if self.attempts[i].role is AttemptRole.VALIDATE]
        if own:
            self.attempts[own[-1]] = replace(self.attempts[own[-1]], verdict=verdict)
            for i in own:  # each streamed once, the judging call with its verdict
                if self._on_attempt is not None:
                    self._on_attempt(self.attempts[i])
        else:
            self._record(AttemptRole.VALIDATE, None, Effort.OFF, verdict=verdict)
        if verdict.kind is VerdictKind.REPAIR and verdict.repaired is not None:
            self.best_output = verdict.repaired
        elif not verdict.kind.passed:
            self._set_aside(draft)
        return verdict

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
        return Outcome(
            request_id=self.request.request_id,
            status=status,
            output=out,
            attempts=tuple(self.attempts),
            explanation=self.explanation,
            total_cost_usd=sum(a.cost_usd for a in self.attempts),
            saved_usd=sum(a.saved_usd for a in self.attempts),
            tenant=self.request.tenant,
            task=self.request.task,
            decision_id=new_id(),
        )
