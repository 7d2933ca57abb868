from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]
    ROLE_TOOL: _ClassVar[Role]

class Stakes(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAKES_UNSPECIFIED: _ClassVar[Stakes]
    STAKES_LOW: _ClassVar[Stakes]
    STAKES_NORMAL: _ClassVar[Stakes]
    STAKES_HIGH: _ClassVar[Stakes]
    STAKES_CRITICAL: _ClassVar[Stakes]

class Effort(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EFFORT_UNSPECIFIED: _ClassVar[Effort]
    EFFORT_OFF: _ClassVar[Effort]
    EFFORT_LOW: _ClassVar[Effort]
    EFFORT_MEDIUM: _ClassVar[Effort]
    EFFORT_HIGH: _ClassVar[Effort]

class CacheMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_MODE_UNSPECIFIED: _ClassVar[CacheMode]
    CACHE_MODE_BYPASS: _ClassVar[CacheMode]
    CACHE_MODE_REFRESH: _ClassVar[CacheMode]
    CACHE_MODE_ONLY_IF_CACHED: _ClassVar[CacheMode]

class OutcomeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_STATUS_UNSPECIFIED: _ClassVar[OutcomeStatus]
    OUTCOME_STATUS_ACCEPTED: _ClassVar[OutcomeStatus]
    OUTCOME_STATUS_ACCEPTED_UNVALIDATED: _ClassVar[OutcomeStatus]
    OUTCOME_STATUS_REJECTED: _ClassVar[OutcomeStatus]
    OUTCOME_STATUS_BUDGET_EXHAUSTED: _ClassVar[OutcomeStatus]
    OUTCOME_STATUS_DEADLINE_EXCEEDED: _ClassVar[OutcomeStatus]
    OUTCOME_STATUS_UPSTREAM_FAILED: _ClassVar[OutcomeStatus]

class AttemptRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_ROLE_UNSPECIFIED: _ClassVar[AttemptRole]
    ATTEMPT_ROLE_ANSWER: _ClassVar[AttemptRole]
    ATTEMPT_ROLE_DRAFT: _ClassVar[AttemptRole]
    ATTEMPT_ROLE_VALIDATE: _ClassVar[AttemptRole]
    ATTEMPT_ROLE_REPAIR: _ClassVar[AttemptRole]
    ATTEMPT_ROLE_ESCALATE: _ClassVar[AttemptRole]

class StatsGroup(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATS_GROUP_UNSPECIFIED: _ClassVar[StatsGroup]
    STATS_GROUP_POLICY: _ClassVar[StatsGroup]
    STATS_GROUP_TENANT: _ClassVar[StatsGroup]
    STATS_GROUP_TASK: _ClassVar[StatsGroup]
    STATS_GROUP_MODEL: _ClassVar[StatsGroup]
    STATS_GROUP_STRATEGY: _ClassVar[StatsGroup]
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
ROLE_TOOL: Role
STAKES_UNSPECIFIED: Stakes
STAKES_LOW: Stakes
STAKES_NORMAL: Stakes
STAKES_HIGH: Stakes
STAKES_CRITICAL: Stakes
EFFORT_UNSPECIFIED: Effort
EFFORT_OFF: Effort
EFFORT_LOW: Effort
EFFORT_MEDIUM: Effort
EFFORT_HIGH: Effort
CACHE_MODE_UNSPECIFIED: CacheMode
CACHE_MODE_BYPASS: CacheMode
CACHE_MODE_REFRESH: CacheMode
CACHE_MODE_ONLY_IF_CACHED: CacheMode
OUTCOME_STATUS_UNSPECIFIED: OutcomeStatus
OUTCOME_STATUS_ACCEPTED: OutcomeStatus
OUTCOME_STATUS_ACCEPTED_UNVALIDATED: OutcomeStatus
OUTCOME_STATUS_REJECTED: OutcomeStatus
OUTCOME_STATUS_BUDGET_EXHAUSTED: OutcomeStatus
OUTCOME_STATUS_DEADLINE_EXCEEDED: OutcomeStatus
OUTCOME_STATUS_UPSTREAM_FAILED: OutcomeStatus
ATTEMPT_ROLE_UNSPECIFIED: AttemptRole
ATTEMPT_ROLE_ANSWER: AttemptRole
ATTEMPT_ROLE_DRAFT: AttemptRole
ATTEMPT_ROLE_VALIDATE: AttemptRole
ATTEMPT_ROLE_REPAIR: AttemptRole
ATTEMPT_ROLE_ESCALATE: AttemptRole
STATS_GROUP_UNSPECIFIED: StatsGroup
STATS_GROUP_POLICY: StatsGroup
STATS_GROUP_TENANT: StatsGroup
STATS_GROUP_TASK: StatsGroup
STATS_GROUP_MODEL: StatsGroup
STATS_GROUP_STRATEGY: StatsGroup

class Message(_message.Message):
    __slots__ = ("role", "content", "tool_calls", "tool_call_id", "name")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    tool_call_id: str
    name: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("id", "name", "arguments_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments_json: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments_json: _Optional[str] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "parameters_json_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters_json_schema: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters_json_schema: _Optional[str] = ...) -> None: ...

class ResponseFormat(_message.Message):
    __slots__ = ("kind", "json_schema", "schema_name")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ResponseFormat.Kind]
        KIND_TEXT: _ClassVar[ResponseFormat.Kind]
        KIND_JSON_OBJECT: _ClassVar[ResponseFormat.Kind]
        KIND_JSON_SCHEMA: _ClassVar[ResponseFormat.Kind]
    KIND_UNSPECIFIED: ResponseFormat.Kind
    KIND_TEXT: ResponseFormat.Kind
    KIND_JSON_OBJECT: ResponseFormat.Kind
    KIND_JSON_SCHEMA: ResponseFormat.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_NAME_FIELD_NUMBER: _ClassVar[int]
    kind: ResponseFormat.Kind
    json_schema: str
    schema_name: str
    def __init__(self, kind: _Optional[_Union[ResponseFormat.Kind, str]] = ..., json_schema: _Optional[str] = ..., schema_name: _Optional[str] = ...) -> None: ...

class ToolChoice(_message.Message):
    __slots__ = ("mode", "function_name")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[ToolChoice.Mode]
        MODE_AUTO: _ClassVar[ToolChoice.Mode]
        MODE_NONE: _ClassVar[ToolChoice.Mode]
        MODE_REQUIRED: _ClassVar[ToolChoice.Mode]
        MODE_FUNCTION: _ClassVar[ToolChoice.Mode]
    MODE_UNSPECIFIED: ToolChoice.Mode
    MODE_AUTO: ToolChoice.Mode
    MODE_NONE: ToolChoice.Mode
    MODE_REQUIRED: ToolChoice.Mode
    MODE_FUNCTION: ToolChoice.Mode
    MODE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    mode: ToolChoice.Mode
    function_name: str
    def __init__(self, mode: _Optional[_Union[ToolChoice.Mode, str]] = ..., function_name: _Optional[str] = ...) -> None: ...

class GenerationParams(_message.Message):
    __slots__ = ("max_output_tokens", "temperature", "top_p", "stop", "response_format", "seed", "tool_choice")
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    max_output_tokens: int
    temperature: float
    top_p: float
    stop: _containers.RepeatedScalarFieldContainer[str]
    response_format: ResponseFormat
    seed: int
    tool_choice: ToolChoice
    def __init__(self, max_output_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Iterable[str]] = ..., response_format: _Optional[_Union[ResponseFormat, _Mapping]] = ..., seed: _Optional[int] = ..., tool_choice: _Optional[_Union[ToolChoice, _Mapping]] = ...) -> None: ...

class Constraints(_message.Message):
    __slots__ = ("allowed_licenses", "local_only", "max_cost_usd", "allowed_models", "denied_models")
    ALLOWED_LICENSES_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ONLY_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    DENIED_MODELS_FIELD_NUMBER: _ClassVar[int]
    allowed_licenses: _containers.RepeatedScalarFieldContainer[str]
    local_only: bool
    max_cost_usd: float
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    denied_models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, allowed_licenses: _Optional[_Iterable[str]] = ..., local_only: _Optional[bool] = ..., max_cost_usd: _Optional[float] = ..., allowed_models: _Optional[_Iterable[str]] = ..., denied_models: _Optional[_Iterable[str]] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("request_id", "messages", "tools", "params", "task", "stakes", "labels", "constraints", "cache_mode", "policy", "tenant")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STAKES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MODE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    params: GenerationParams
    task: str
    stakes: Stakes
    labels: _containers.ScalarMap[str, str]
    constraints: Constraints
    cache_mode: CacheMode
    policy: str
    tenant: str
    def __init__(self, request_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., params: _Optional[_Union[GenerationParams, _Mapping]] = ..., task: _Optional[str] = ..., stakes: _Optional[_Union[Stakes, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., constraints: _Optional[_Union[Constraints, _Mapping]] = ..., cache_mode: _Optional[_Union[CacheMode, str]] = ..., policy: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class Verdict(_message.Message):
    __slots__ = ("kind", "reason", "validator")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Verdict.Kind]
        KIND_ACCEPT: _ClassVar[Verdict.Kind]
        KIND_REJECT: _ClassVar[Verdict.Kind]
        KIND_REPAIR: _ClassVar[Verdict.Kind]
        KIND_MALFORMED: _ClassVar[Verdict.Kind]
    KIND_UNSPECIFIED: Verdict.Kind
    KIND_ACCEPT: Verdict.Kind
    KIND_REJECT: Verdict.Kind
    KIND_REPAIR: Verdict.Kind
    KIND_MALFORMED: Verdict.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    kind: Verdict.Kind
    reason: str
    validator: str
    def __init__(self, kind: _Optional[_Union[Verdict.Kind, str]] = ..., reason: _Optional[str] = ..., validator: _Optional[str] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("index", "role", "model", "provider", "effort", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "cached", "verdict", "error", "saved_usd", "usage_estimated", "finish_reason", "output")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    EFFORT_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SAVED_USD_FIELD_NUMBER: _ClassVar[int]
    USAGE_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    index: int
    role: AttemptRole
    model: str
    provider: str
    effort: Effort
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    cached: bool
    verdict: Verdict
    error: str
    saved_usd: float
    usage_estimated: bool
    finish_reason: str
    output: Message
    def __init__(self, index: _Optional[int] = ..., role: _Optional[_Union[AttemptRole, str]] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., effort: _Optional[_Union[Effort, str]] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., latency_ms: _Optional[float] = ..., cached: _Optional[bool] = ..., verdict: _Optional[_Union[Verdict, _Mapping]] = ..., error: _Optional[str] = ..., saved_usd: _Optional[float] = ..., usage_estimated: _Optional[bool] = ..., finish_reason: _Optional[str] = ..., output: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class CostRange(_message.Message):
    __slots__ = ("best_usd", "worst_usd")
    BEST_USD_FIELD_NUMBER: _ClassVar[int]
    WORST_USD_FIELD_NUMBER: _ClassVar[int]
    best_usd: float
    worst_usd: float
    def __init__(self, best_usd: _Optional[float] = ..., worst_usd: _Optional[float] = ...) -> None: ...

class PlanStep(_message.Message):
    __slots__ = ("role", "model", "effort", "validator", "estimated_cost_usd", "reason", "best_cost_usd")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EFFORT_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BEST_COST_USD_FIELD_NUMBER: _ClassVar[int]
    role: str
    model: str
    effort: Effort
    validator: str
    estimated_cost_usd: float
    reason: str
    best_cost_usd: float
    def __init__(self, role: _Optional[str] = ..., model: _Optional[str] = ..., effort: _Optional[_Union[Effort, str]] = ..., validator: _Optional[str] = ..., estimated_cost_usd: _Optional[float] = ..., reason: _Optional[str] = ..., best_cost_usd: _Optional[float] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("policy", "rule", "strategy", "reason", "models", "steps", "estimated_cost", "warnings", "policy_version")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    policy: str
    rule: str
    strategy: str
    reason: str
    models: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedCompositeFieldContainer[PlanStep]
    estimated_cost: CostRange
    warnings: _containers.RepeatedScalarFieldContainer[str]
    policy_version: str
    def __init__(self, policy: _Optional[str] = ..., rule: _Optional[str] = ..., strategy: _Optional[str] = ..., reason: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[_Union[PlanStep, _Mapping]]] = ..., estimated_cost: _Optional[_Union[CostRange, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ..., policy_version: _Optional[str] = ...) -> None: ...

class CompleteResponse(_message.Message):
    __slots__ = ("request_id", "output", "status", "attempts", "total_cost_usd", "explanation", "trace_id", "saved_usd", "tokens_saved", "decision_id", "replayed")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SAVED_USD_FIELD_NUMBER: _ClassVar[int]
    TOKENS_SAVED_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    output: Message
    status: OutcomeStatus
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    total_cost_usd: float
    explanation: Explanation
    trace_id: str
    saved_usd: float
    tokens_saved: int
    decision_id: str
    replayed: bool
    def __init__(self, request_id: _Optional[str] = ..., output: _Optional[_Union[Message, _Mapping]] = ..., status: _Optional[_Union[OutcomeStatus, str]] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., total_cost_usd: _Optional[float] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., trace_id: _Optional[str] = ..., saved_usd: _Optional[float] = ..., tokens_saved: _Optional[int] = ..., decision_id: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class StreamCompleteResponse(_message.Message):
    __slots__ = ("delta", "attempt", "final", "provisional_delta", "provisional_verdict")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    PROVISIONAL_DELTA_FIELD_NUMBER: _ClassVar[int]
    PROVISIONAL_VERDICT_FIELD_NUMBER: _ClassVar[int]
    delta: str
    attempt: Attempt
    final: CompleteResponse
    provisional_delta: str
    provisional_verdict: ProvisionalVerdict
    def __init__(self, delta: _Optional[str] = ..., attempt: _Optional[_Union[Attempt, _Mapping]] = ..., final: _Optional[_Union[CompleteResponse, _Mapping]] = ..., provisional_delta: _Optional[str] = ..., provisional_verdict: _Optional[_Union[ProvisionalVerdict, _Mapping]] = ...) -> None: ...

class ProvisionalVerdict(_message.Message):
    __slots__ = ("confirmed", "reason")
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    confirmed: bool
    reason: str
    def __init__(self, confirmed: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("explanation",)
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    explanation: Explanation
    def __init__(self, explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class ReportOutcomeRequest(_message.Message):
    __slots__ = ("request_id", "success", "score", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    success: bool
    score: float
    note: str
    def __init__(self, request_id: _Optional[str] = ..., success: _Optional[bool] = ..., score: _Optional[float] = ..., note: _Optional[str] = ...) -> None: ...

class ReportOutcomeResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("window_seconds", "group_by", "tenant", "policy")
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    window_seconds: int
    group_by: _containers.RepeatedScalarFieldContainer[StatsGroup]
    tenant: str
    policy: str
    def __init__(self, window_seconds: _Optional[int] = ..., group_by: _Optional[_Iterable[_Union[StatsGroup, str]]] = ..., tenant: _Optional[str] = ..., policy: _Optional[str] = ...) -> None: ...

class StatsRow(_message.Message):
    __slots__ = ("group", "requests", "successes", "total_cost_usd", "cost_per_success_usd", "saved_usd", "escalation_rate", "validator_accept_rate", "latency_p50_ms", "latency_p95_ms", "escalations", "validations", "reported", "attempts", "failed_attempts", "tokens_saved")
    class GroupEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GROUP_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    COST_PER_SUCCESS_USD_FIELD_NUMBER: _ClassVar[int]
    SAVED_USD_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_RATE_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_ACCEPT_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    ESCALATIONS_FIELD_NUMBER: _ClassVar[int]
    VALIDATIONS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_SAVED_FIELD_NUMBER: _ClassVar[int]
    group: _containers.ScalarMap[str, str]
    requests: int
    successes: int
    total_cost_usd: float
    cost_per_success_usd: float
    saved_usd: float
    escalation_rate: float
    validator_accept_rate: float
    latency_p50_ms: float
    latency_p95_ms: float
    escalations: int
    validations: int
    reported: int
    attempts: int
    failed_attempts: int
    tokens_saved: int
    def __init__(self, group: _Optional[_Mapping[str, str]] = ..., requests: _Optional[int] = ..., successes: _Optional[int] = ..., total_cost_usd: _Optional[float] = ..., cost_per_success_usd: _Optional[float] = ..., saved_usd: _Optional[float] = ..., escalation_rate: _Optional[float] = ..., validator_accept_rate: _Optional[float] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., escalations: _Optional[int] = ..., validations: _Optional[int] = ..., reported: _Optional[int] = ..., attempts: _Optional[int] = ..., failed_attempts: _Optional[int] = ..., tokens_saved: _Optional[int] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("rows", "policy_version", "config_error", "embedding_rows")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ERROR_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[StatsRow]
    policy_version: str
    config_error: str
    embedding_rows: _containers.RepeatedCompositeFieldContainer[StatsRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[StatsRow, _Mapping]]] = ..., policy_version: _Optional[str] = ..., config_error: _Optional[str] = ..., embedding_rows: _Optional[_Iterable[_Union[StatsRow, _Mapping]]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("provider", "tag", "include_unservable")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_UNSERVABLE_FIELD_NUMBER: _ClassVar[int]
    provider: str
    tag: str
    include_unservable: bool
    def __init__(self, provider: _Optional[str] = ..., tag: _Optional[str] = ..., include_unservable: _Optional[bool] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "provider", "upstream", "input_usd_per_mtok", "output_usd_per_mtok", "context_window", "license", "tags", "thinking", "local", "unservable_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    INPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    UNSERVABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    provider: str
    upstream: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    context_window: int
    license: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    thinking: bool
    local: bool
    unservable_reason: str
    def __init__(self, id: _Optional[str] = ..., provider: _Optional[str] = ..., upstream: _Optional[str] = ..., input_usd_per_mtok: _Optional[float] = ..., output_usd_per_mtok: _Optional[float] = ..., context_window: _Optional[int] = ..., license: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., thinking: _Optional[bool] = ..., local: _Optional[bool] = ..., unservable_reason: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("request_id", "texts", "task", "labels", "constraints", "cache_mode", "policy", "tenant", "dimensions")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MODE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    texts: _containers.RepeatedScalarFieldContainer[str]
    task: str
    labels: _containers.ScalarMap[str, str]
    constraints: Constraints
    cache_mode: CacheMode
    policy: str
    tenant: str
    dimensions: int
    def __init__(self, request_id: _Optional[str] = ..., texts: _Optional[_Iterable[str]] = ..., task: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., constraints: _Optional[_Union[Constraints, _Mapping]] = ..., cache_mode: _Optional[_Union[CacheMode, str]] = ..., policy: _Optional[str] = ..., tenant: _Optional[str] = ..., dimensions: _Optional[int] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("index", "values", "cached")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    index: int
    values: _containers.RepeatedScalarFieldContainer[float]
    cached: bool
    def __init__(self, index: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ..., cached: _Optional[bool] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("request_id", "embeddings", "model", "dimensions", "input_tokens", "total_cost_usd", "saved_usd", "status", "attempts", "explanation", "trace_id", "decision_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    SAVED_USD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    model: str
    dimensions: int
    input_tokens: int
    total_cost_usd: float
    saved_usd: float
    status: OutcomeStatus
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    explanation: Explanation
    trace_id: str
    decision_id: str
    def __init__(self, request_id: _Optional[str] = ..., embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., model: _Optional[str] = ..., dimensions: _Optional[int] = ..., input_tokens: _Optional[int] = ..., total_cost_usd: _Optional[float] = ..., saved_usd: _Optional[float] = ..., status: _Optional[_Union[OutcomeStatus, str]] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., trace_id: _Optional[str] = ..., decision_id: _Optional[str] = ...) -> None: ...
