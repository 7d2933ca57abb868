"""What plugins register: small frozen specs, one per kind of extension.

A spec pairs the plugin's code with a pydantic model of its parameters, so the
policy file is validated in full at load time, before anything runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import BaseModel, BeforeValidator, ConfigDict

from policyd.plugin.attribution import plugin_label
from policyd.types import (
    Attempt,
    AttemptRole,
    Effort,
    Explanation,
    GenerationParams,
    Message,
    ModelCall,
    ModelResponse,
    ModelSpec,
    Outcome,
    OutcomeStatus,
    PlanStep,
    Request,
    Tool,
    Verdict,
)

DeltaSink = Callable[[str], None]
"""Receives answer text as it streams in, in order."""


@dataclass(frozen=True)
class Progress:
    """Where a streaming request's progress goes: answer text and finished attempts."""

    on_delta: DeltaSink | None = None
    on_attempt: Callable[[Attempt], None] | None = None
    """Called when an attempt is recorded, and again (same index) when its verdict is known."""
    on_provisional: DeltaSink | None = None
    """Draft text that its gate may still reject (a plan with ``stream_draft: provisional``)."""
    on_settle: Callable[[bool, str], None] | None = None
    """The provisional text so far is confirmed (True: it is the answer) or retracted (False, with why)."""


def _yaml_off(value: Any) -> Any:
    return Effort.OFF if value is False else value


EffortParam = Annotated[Effort, BeforeValidator(_yaml_off)]
"""An effort level in plan parameters. YAML reads a bare ``off`` as false; that means off."""


class NoParams(BaseModel):
    """Parameters model for extensions that take none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- providers


class Provider(Protocol):
    """A live connection to one upstream, built from a provider instance's settings."""

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        """Answer ``call`` completely.

        With ``on_delta`` the provider streams from its upstream and passes each text
        piece to it as it arrives; the returned response still holds the full answer.
        Failures raise :class:`policyd.errors.UpstreamError` with ``retryable`` set.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; called on shutdown and when a reload replaces it."""
        ...


@dataclass(frozen=True)
class ProviderSpec:
    kind: str
    """Name used as ``providers.<name>.kind`` in the policy file."""
    factory: Callable[[str, Any], Provider]
    """``factory(instance_name, settings)`` builds a provider from validated settings."""
    settings: type[BaseModel] = NoParams
    """Pydantic model of the instance's settings (everything but ``kind``)."""


@dataclass(frozen=True)
class CatalogSpec:
    name: str
    models: Sequence[ModelSpec]


# ---------------------------------------------------------------- strategies


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


@runtime_checkable
class StrategyContext(Protocol):
    """What a strategy (and a validator) sees of one request; ``docs/plugins.md`` describes each member.

    The engine's implementation is :class:`policyd.engine.context.StrategyContext`, a view
    of the request's Turn; plugins type against this protocol (``policyd.api.StrategyContext``).
    """

    @property
    def request(self) -> Request: ...
    @property
    def plan(self) -> Any:
        """The matched plan: ``strategy``, ``params``, ``models``, ``cache_enabled``..."""

    @property
    def params(self) -> Any: ...
    @property
    def catalog(self) -> Mapping[str, ModelSpec]: ...
    @property
    def explanation(self) -> Explanation: ...
    @property
    def deadline(self) -> float | None: ...
    @property
    def max_cost_usd(self) -> float: ...
    @property
    def spent_usd(self) -> float: ...
    @property
    def reserved_usd(self) -> float: ...
    @property
    def attempts(self) -> list[Attempt]: ...
    @property
    def best_output(self) -> Message | None: ...
    @property
    def streamed(self) -> bool: ...

    def remaining_s(self) -> float | None: ...
    def model(self, model_id: str) -> ModelSpec: ...
    def excluded_by(self, model_id: str) -> str | None: ...
    def allowed(self, model_id: str) -> bool: ...
    def estimate_call_usd(
        self,
        model_id: str,
        messages: tuple[Message, ...] | None = None,
        max_output_tokens: int | None = None,
        effort: Effort = Effort.OFF,
        tools: tuple[Tool, ...] | None = None,
    ) -> float: ...
    def can_afford(self, usd: float) -> bool: ...
    def time_box(self, seconds: float | None) -> AbstractContextManager[None]: ...
    def box_remaining_s(self) -> float | None: ...
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
    ) -> CallResult: ...
    def logprobs_of(self, message: Message) -> tuple[float, ...] | None: ...
    async def validate(self, ref: ValidatorRef, draft: Message) -> Verdict: ...
    def needs_logprobs(self, ref: ValidatorRef | None) -> bool: ...
    def outcome(self, status: OutcomeStatus, output: Message | None = None) -> Outcome: ...


@runtime_checkable
class ExplainContext(Protocol):
    """What a strategy's ``describe`` (and a validator's ``estimate_usd``) sees: request, plan, catalog.

    The engine's implementation is :class:`policyd.engine.explain.ExplainContext`.
    """

    @property
    def request(self) -> Request: ...
    @property
    def plan(self) -> Any: ...
    @property
    def catalog(self) -> Mapping[str, ModelSpec]: ...
    @property
    def validators(self) -> Mapping[str, Validator]: ...
    @property
    def params(self) -> Any: ...
    @property
    def answer_tokens(self) -> int: ...

    def estimate_usd(
        self,
        model_id: str,
        *,
        output_tokens: int | None = None,
        extra_input_tokens: int = 0,
        effort: Effort = Effort.OFF,
        reasoning: bool = True,
    ) -> float: ...
    def validator_usd(self, ref: ValidatorRef | None) -> tuple[float, float]: ...
    def excluded_by(self, model_id: str) -> str | None:
        """The request constraint that forbids this model (as the run checks it), or None."""
        ...

    def allowed(self, model_id: str) -> bool: ...


StrategyFn = Callable[[StrategyContext], Awaitable[Outcome]]


@dataclass(frozen=True)
class StrategySpec:
    name: str
    run: StrategyFn
    params: type[BaseModel] = NoParams
    models: Callable[[Any], Sequence[str]] = lambda params: ()
    """Model ids the plan may call, in order, for validation and explanations."""
    validators: Callable[[Any], Sequence[ValidatorRef]] = lambda params: ()
    """Validator references in the parameters, checked at load time."""
    describe: Callable[[ExplainContext], Sequence[PlanStep]] | None = None
    """Steps and cost estimates for ``Explain``; None shows one step per model."""
    best_worst_usd: Callable[[ExplainContext], tuple[float, float]] | None = None
    """Estimated cost range; None sums the steps for the worst and takes the first for the best."""
    warnings: Callable[[ExplainContext], Sequence[str]] | None = None
    """Warnings about the plan for this request (e.g. validation costing more than the strong model)."""
    estimates_only: bool = False
    """``describe``, ``best_worst_usd`` and ``warnings`` read the request only through the context's
    estimates (``estimate_usd``, ``answer_tokens``, ``allowed``/``excluded_by``, ``cost_cap_usd``,
    ``validator_usd``), never ``ectx.request`` itself: the engine may then reuse one explanation
    for requests alike in those (same match, input-token estimate, output limit and constraints)."""
    replayable: bool = False
    """Given the same request, plan, cost cap and answers to its calls, and at least a second of its
    deadline left (or as much as before), ``run`` makes the same calls and returns the same outcome
    (no randomness, no clock, no state of its own): a request whose every call was a cache hit may
    then be answered again from that outcome without running it (``docs/cache.md``, "Repeated
    requests")."""


# ---------------------------------------------------------------- validators


class ValidatorRef(BaseModel):
    """How a plan names a validator: its registered name, an optional model and parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str | None = None
    params: dict[str, Any] = {}


def validator_key(ref: ValidatorRef) -> str:
    """The key a built validator is stored under in ``Config.validators``: its reference as JSON."""
    return ref.model_dump_json()


class Validator(Protocol):
    """A built validator: an async callable judging one draft.

    Two optional attributes let strategies and ``Explain`` use it well:

    * ``needs_logprobs: bool`` — the drafter is asked for token log-probabilities;
    * ``estimate_usd(ectx) -> (best, worst)`` — the USD one run may cost, from the
      :class:`~policyd.engine.explain.ExplainContext`; without it the validator is free.
    """

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        """Judge ``draft`` for ``ctx.request``. May call models through ``ctx``."""
        ...


@dataclass(frozen=True)
class ValidatorSpec:
    name: str
    factory: Callable[[ValidatorRef, Any], Validator]
    """``factory(ref, params)`` builds a validator from its reference and validated params."""
    params: type[BaseModel] = NoParams
    needs_model: bool = False
    """The reference must name a catalog model (e.g. an LLM judge)."""


# ---------------------------------------------------------------- transforms


@dataclass(frozen=True)
class TransformResult:
    request: Request
    tokens_saved: int = 0


@dataclass(frozen=True)
class TransformSpec:
    name: str
    apply: Callable[[Request, Any], TransformResult]
    params: type[BaseModel] = NoParams


# ---------------------------------------------------------------- decision sinks


class DecisionSink(Protocol):
    """Receives decision events (see ``docs/telemetry.md``), on a worker thread, one at a time."""

    def emit(self, event: Mapping[str, Any]) -> None:
        """Deliver one event (a JSON-ready dict, already scrubbed). May block; never sees the request path."""
        ...

    def close(self) -> None:
        """Flush and release; called once on shutdown after the last event."""
        ...


@dataclass(frozen=True)
class SinkContext:
    """What a sink factory may use besides its parameters."""

    data_dir: Path
    """The daemon's private data directory; relative file paths resolve against it."""
    logger_provider: Any = None
    """The OpenTelemetry ``LoggerProvider``, or None when no logs exporter is configured."""


@dataclass(frozen=True)
class DecisionSinkSpec:
    name: str
    """Name used in ``telemetry.decisions.sinks[].name`` in the policy file."""
    factory: Callable[[SinkContext, Any], DecisionSink]
    """``factory(context, params)`` builds a sink from validated parameters."""
    params: type[BaseModel] = NoParams


# ---------------------------------------------------------------- budgets


@dataclass(frozen=True)
class BudgetLine:
    """One budget a request must fit in: a scope (tenant or policy), a period and its limit."""

    name: str
    """For people and errors: ``tenant 'acme' daily budget ($5.00)``."""
    key: str
    """Unique per scope and period (a new day is a new key); stores count per key."""
    limit_usd: float
    period_start: float
    """Unix seconds (UTC day or month start)."""
    period_end: float
    tenant: str | None = None
    policy: str | None = None


@dataclass(frozen=True)
class BudgetRefusal:
    line: BudgetLine
    spent_usd: float
    reserved_usd: float


class BudgetStore(Protocol):
    """Counts spent and reserved USD per budget line; shared stores serve several replicas."""

    async def reserve(self, lines: Sequence[BudgetLine], usd: float) -> BudgetRefusal | None:
        """Atomically add ``usd`` to every line's reservations if each keeps ``spent + reserved
        <= limit``; otherwise change nothing and answer the first line that would overflow."""
        ...

    async def settle(self, lines: Sequence[BudgetLine], reserved_usd: float, spent_usd: float) -> None:
        """Release a reservation made by :meth:`reserve` and count what was really spent."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class BudgetStoreContext:
    data_dir: Path
    recorded_usd: Callable[[BudgetLine], Awaitable[float]]
    """USD this daemon's ledger recorded in the line's scope since its period began."""


@dataclass(frozen=True)
class BudgetStoreSpec:
    kind: str
    """Name used as ``budgets.store.kind`` in the policy file."""
    factory: Callable[[Any, BudgetStoreContext], BudgetStore]
    """``factory(settings, context)`` builds the store from validated settings."""
    settings: type[BaseModel] = NoParams


@dataclass
class Registered:
    """Everything the plugins registered, keyed by name; built once per boot."""

    providers: dict[str, ProviderSpec] = field(default_factory=dict)
    catalogs: dict[str, CatalogSpec] = field(default_factory=dict)
    strategies: dict[str, StrategySpec] = field(default_factory=dict)
    validators: dict[str, ValidatorSpec] = field(default_factory=dict)
    transforms: dict[str, TransformSpec] = field(default_factory=dict)
    decision_sinks: dict[str, DecisionSinkSpec] = field(default_factory=dict)
    budget_stores: dict[str, BudgetStoreSpec] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name) → the plugin that registered it."""
    versions: dict[str, str] = field(default_factory=dict)
    """Plugin name → its version, for errors that name both."""

    def plugin_label(self, kind: str, name: str) -> str:
        """``"<plugin> <version>"`` of the plugin that registered ``name`` of ``kind`` (e.g. strategies)."""
        return plugin_label(self, kind, name)
