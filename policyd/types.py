"""Domain types shared by the engine, the server and every plugin.

These are plain frozen dataclasses: the engine never sees protobuf and plugins
never see gRPC. The server translates between the two (``policyd.server.convert``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import Any, TypeVar

_T = TypeVar("_T")


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Stakes(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _STAKES_ORDER.index(self)


_STAKES_ORDER = [Stakes.LOW, Stakes.NORMAL, Stakes.HIGH, Stakes.CRITICAL]


class Effort(enum.StrEnum):
    """Reasoning effort; each provider maps it to its API's own knob."""

    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return EFFORT_LADDER.index(self)


EFFORT_LADDER = [Effort.OFF, Effort.LOW, Effort.MEDIUM, Effort.HIGH]


class CacheMode(enum.StrEnum):
    DEFAULT = "default"
    BYPASS = "bypass"
    REFRESH = "refresh"
    ONLY_IF_CACHED = "only-if-cached"


class OutcomeStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    ACCEPTED_UNVALIDATED = "accepted-unvalidated"
    REJECTED = "rejected"
    BUDGET_EXHAUSTED = "budget-exhausted"
    DEADLINE_EXCEEDED = "deadline-exceeded"
    UPSTREAM_FAILED = "upstream-failed"

    @property
    def is_success(self) -> bool:
        return self in (OutcomeStatus.ACCEPTED, OutcomeStatus.ACCEPTED_UNVALIDATED)


class AttemptRole(enum.StrEnum):
    ANSWER = "answer"
    DRAFT = "draft"
    VALIDATE = "validate"
    REPAIR = "repair"
    ESCALATE = "escalate"


class VerdictKind(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    REPAIR = "repair"
    MALFORMED = "malformed"

    @property
    def passed(self) -> bool:
        return self in (VerdictKind.ACCEPT, VerdictKind.REPAIR)


# ---------------------------------------------------------------- request


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments_json: str


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """The JSON Schema of the parameters, parsed."""


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    kind: str = "text"  # "text" | "json_object" | "json_schema"
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = ""


TOOL_CHOICE_MODES = ("auto", "none", "required", "function")


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Whether the model may (``auto``), must not (``none``) or must (``required``) call a tool,
    or must call the one named (``function``). Providers map it to their wire format."""

    mode: str = "auto"
    function: str = ""
    """For ``function``: the tool's name (one of the call's tools)."""


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    response_format: ResponseFormat = ResponseFormat()
    seed: int | None = None
    tool_choice: ToolChoice | None = None
    """None: the upstream's default (auto when tools are offered)."""


@dataclass(frozen=True, slots=True)
class Constraints:
    allowed_licenses: frozenset[str] = frozenset()
    local_only: bool = False
    max_cost_usd: float | None = None
    allowed_models: frozenset[str] = frozenset()
    denied_models: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Request:
    """A validated completion request with the caller's intent."""

    request_id: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    params: GenerationParams = GenerationParams()
    task: str = ""
    stakes: Stakes = Stakes.NORMAL
    labels: Mapping[str, str] = field(default_factory=dict)
    constraints: Constraints = Constraints()
    cache_mode: CacheMode = CacheMode.DEFAULT
    policy: str = ""
    tenant: str = "default"
    deadline: float | None = None
    """Absolute deadline on the ``time.monotonic()`` clock, if any."""


# ---------------------------------------------------------------- catalog


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A catalog entry: what a model is, costs and may be used for."""

    id: str
    provider: str
    upstream: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    context_window: int
    license: str
    tags: frozenset[str] = frozenset()
    thinking: bool = False
    local: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    """Provider-specific options (e.g. ``thinking_flag: enable_thinking``)."""

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok) / 1_000_000


# ---------------------------------------------------------------- calls


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One normalized call to a model, as a provider plugin receives it."""

    model: ModelSpec
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    params: GenerationParams = GenerationParams()
    effort: Effort = Effort.OFF
    role: AttemptRole = AttemptRole.ANSWER
    tenant: str = "default"
    task: str = ""
    timeout_s: float | None = None
    """Seconds left for the whole call, retries included."""
    logprobs: bool = False
    cache_mode: CacheMode = CacheMode.DEFAULT
    sample_index: int = 0
    """Distinguishes deliberate repeated samples (self-consistency) in the cache."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """The request's labels, for providers that forward metadata or replay recorded answers."""
    cache_ttl_s: float | None = None
    """Lifetime of the stored answer (the plan's ``cache.ttl_s``); None: the cache's default."""


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """A provider's complete answer to a ModelCall."""

    message: Message
    usage: Usage
    finish_reason: str = "stop"
    response_model: str = ""
    logprobs: tuple[float, ...] | None = None
    """Per-token log-probabilities of the answer, where the upstream returns them."""
    cached: bool = False
    latency_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """A piece of text streamed by a provider before its final ModelResponse."""

    text: str


# ---------------------------------------------------------------- outcome


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    reason: str = ""
    validator: str = ""
    repaired: Message | None = None
    """For REPAIR: the corrected answer."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One model call or validator run, as it appears in the trail."""

    index: int
    role: AttemptRole
    model: str
    provider: str
    effort: Effort
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False
    verdict: Verdict | None = None
    error: str = ""
    """What failed, in policyd's words: safe for logs, telemetry and the ledger."""
    error_detail: str = ""
    """Text the upstream supplied with the error (it may quote the prompt): for the caller only."""
    saved_usd: float = 0.0
    usage_estimated: bool = False
    finish_reason: str = ""
    output: Message | None = None
    """A draft a validator rejected: its text, kept here because it is never the outcome's output."""


@dataclass(frozen=True, slots=True)
class PlanStep:
    role: str
    model: str = ""
    effort: Effort = Effort.OFF
    validator: str = ""
    estimated_cost_usd: float = 0.0
    """The step's cost when it costs its most (a validator's repair, a full reasoning allowance)."""
    reason: str = ""
    """Why the step is in the plan (or why it will be skipped), in the strategy's words."""
    best_cost_usd: float | None = None
    """The step's cost at its cheapest (a validator's bare accept); None: the same as estimated."""


@dataclass(frozen=True, slots=True)
class Explanation:
    policy: str
    rule: str
    strategy: str
    reason: str
    models: tuple[str, ...] = ()
    steps: tuple[PlanStep, ...] = ()
    best_usd: float = 0.0
    worst_usd: float = 0.0
    warnings: tuple[str, ...] = ()
    policy_version: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    request_id: str
    status: OutcomeStatus
    output: Message | None
    attempts: tuple[Attempt, ...]
    explanation: Explanation
    total_cost_usd: float = 0.0
    saved_usd: float = 0.0
    tokens_saved: int = 0
    trace_id: str = ""
    decision_id: str = ""
    tenant: str = "default"
    task: str = ""
    latency_ms: float = 0.0


# ---------------------------------------------------------------- copies

_INIT_FIELDS: dict[type, tuple[dict[str, int], Callable[[Any], Any]]] = {}


def evolve(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the hot path: the same result (a new object through ``__init__``),
    with the class's field positions and a getter of them looked up once per class instead of per
    copy, and the fields passed by position (keyword arguments cost a dict per copy)."""
    cls = type(obj)
    known = _INIT_FIELDS.get(cls)
    if known is None:
        init = [f for f in fields(cls) if f.init]  # type: ignore[arg-type]
        if any(f.kw_only for f in init):
            return replace(obj, **changes)  # type: ignore[type-var]
        names = tuple(f.name for f in init)
        getter = attrgetter(*names) if len(names) > 1 else (lambda o, _n=names[0]: (getattr(o, _n),))
        known = _INIT_FIELDS[cls] = ({name: i for i, name in enumerate(names)}, getter)
    positions, get = known
    values = list(get(obj))
    for name, value in changes.items():
        try:
            values[positions[name]] = value
        except KeyError:
            raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument {name!r}") from None
    return cls(*values)
