"""Domain types shared by the engine, the server and every plugin.

These are plain frozen dataclasses: the engine never sees protobuf and plugins
never see gRPC. The server translates between the two (``policyd.server.convert``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from operator import attrgetter
from typing import Any, TypeVar

_T = TypeVar("_T")
_C = TypeVar("_C", bound=type)


class _Factory:
    def __repr__(self) -> str:
        return "<factory>"  # as the dataclass's own signature shows it


_FACTORY = _Factory()
"""The default of a field that has a ``default_factory`` in :func:`quick_init`'s ``__init__``."""


def quick_init(cls: _C) -> _C:
    """Give a frozen slots dataclass an ``__init__`` that sets each slot through its own descriptor.

    The generated one calls ``object.__setattr__`` (a global, an attribute and a name lookup)
    per field, so that frozen classes are built the way normal ones are; a request builds
    ten or so of these types and their ``__init__`` was the largest item of the hot path's
    profile. This one takes the same arguments with the same defaults (a ``default_factory``
    called for each object), sets the same values and is about 40 % cheaper; everything else
    (frozen ``__setattr__``, equality, hash, repr, ``replace``, pickling) stays the dataclass's.
    """
    names: list[str] = []
    params: list[str] = []
    body: list[str] = []
    scope: dict[str, Any] = {"_FACTORY": _FACTORY}
    for i, f in enumerate(fields(cls)):
        if not f.init or f.kw_only or f.name.startswith("_"):
            return cls  # not a shape this covers: the dataclass's own __init__ stays
        names.append(f.name)
        scope[f"_set{i}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        value = f.name
        if f.default is not MISSING:
            scope[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        elif f.default_factory is not MISSING:
            scope[f"_factory{i}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            value = f"_factory{i}() if {f.name} is _FACTORY else {f.name}"
        else:
            params.append(f.name)
        body.append(f"    _set{i}(self, {value})")
    if hasattr(cls, "__post_init__") or not names:
        return cls
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(vars(cls)["__init__"].__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses an assignment to __init__)
    return cls


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


@quick_init
@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments_json: str


@quick_init
@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """The JSON Schema of the parameters, parsed."""


@quick_init
@dataclass(frozen=True, slots=True)
class ResponseFormat:
    kind: str = "text"  # "text" | "json_object" | "json_schema"
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = ""


TOOL_CHOICE_MODES = ("auto", "none", "required", "function")


@quick_init
@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Whether the model may (``auto``), must not (``none``) or must (``required``) call a tool,
    or must call the one named (``function``). Providers map it to their wire format."""

    mode: str = "auto"
    function: str = ""
    """For ``function``: the tool's name (one of the call's tools)."""


@quick_init
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


@quick_init
@dataclass(frozen=True, slots=True)
class Constraints:
    allowed_licenses: frozenset[str] = frozenset()
    local_only: bool = False
    max_cost_usd: float | None = None
    allowed_models: frozenset[str] = frozenset()
    denied_models: frozenset[str] = frozenset()


@quick_init
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


@quick_init
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


@quick_init
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


@quick_init
@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False


@quick_init
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


@quick_init
@dataclass(frozen=True, slots=True)
class StreamDelta:
    """A piece of text streamed by a provider before its final ModelResponse."""

    text: str


# ---------------------------------------------------------------- outcome


@quick_init
@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    reason: str = ""
    validator: str = ""
    repaired: Message | None = None
    """For REPAIR: the corrected answer."""


@quick_init
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


@quick_init
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


@quick_init
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


@quick_init
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
