"""Every span, attribute, metric and event name policyd emits, in one module.

GenAI names come from the ``opentelemetry-semantic-conventions`` package where it has
them (``opentelemetry.semconv._incubating``: the GenAI conventions are still
incubating, and in 0.66b2 they are marked as moved to the separate GenAI conventions
repository, with the same names). Our own names live under ``policyd.*``. Code never
spells an attribute name anywhere else, so a convention change is a one-file edit.

This is the only module that imports the package's private ``_incubating`` modules
(``tests/telemetry/test_semconv_sources.py`` checks that, and that every name still
resolves to the value we emit); when a release moves them, importing policyd fails here
with an error that says so, and pyproject's upper bound keeps such a release out until then.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Final

from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import exception_attributes as _exception

INCUBATING_MODULES: Final = (
    "opentelemetry.semconv._incubating.attributes.gen_ai_attributes",
    "opentelemetry.semconv._incubating.metrics.gen_ai_metrics",
)
"""The private modules of opentelemetry-semantic-conventions that policyd reads (here only)."""


def _incubating(module: str) -> ModuleType:
    try:
        return import_module(module)
    except ImportError as exc:
        try:
            installed = version("opentelemetry-semantic-conventions")
        except PackageNotFoundError:
            installed = "not installed"
        raise ImportError(
            f"policyd.telemetry.semconv: opentelemetry-semantic-conventions {installed} has no {module} "
            "(the GenAI conventions moved); install the version pyproject.toml allows, or update this module"
        ) from exc


_gen_ai = _incubating(INCUBATING_MODULES[0])
_gen_ai_metrics = _incubating(INCUBATING_MODULES[1])

# ---------------------------------------------------------------- GenAI (semconv package)

GEN_AI_OPERATION_NAME: Final = _gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME: Final = _gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_REQUEST_MODEL: Final = _gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_MAX_TOKENS: Final = _gen_ai.GEN_AI_REQUEST_MAX_TOKENS
GEN_AI_REQUEST_TEMPERATURE: Final = _gen_ai.GEN_AI_REQUEST_TEMPERATURE
GEN_AI_REQUEST_TOP_P: Final = _gen_ai.GEN_AI_REQUEST_TOP_P
GEN_AI_REQUEST_STOP_SEQUENCES: Final = _gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES
GEN_AI_REQUEST_SEED: Final = _gen_ai.GEN_AI_REQUEST_SEED
GEN_AI_OUTPUT_TYPE: Final = _gen_ai.GEN_AI_OUTPUT_TYPE
GEN_AI_RESPONSE_MODEL: Final = _gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_RESPONSE_FINISH_REASONS: Final = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_USAGE_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
GEN_AI_TOKEN_TYPE: Final = _gen_ai.GEN_AI_TOKEN_TYPE
GEN_AI_INPUT_MESSAGES: Final = _gen_ai.GEN_AI_INPUT_MESSAGES
GEN_AI_OUTPUT_MESSAGES: Final = _gen_ai.GEN_AI_OUTPUT_MESSAGES
GEN_AI_SYSTEM_INSTRUCTIONS: Final = _gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS
ERROR_TYPE: Final = _error.ERROR_TYPE
EXCEPTION_TYPE: Final = _exception.EXCEPTION_TYPE
EXCEPTION_MESSAGE: Final = _exception.EXCEPTION_MESSAGE
EVENT_EXCEPTION: Final = "exception"

OPERATION_CHAT: Final = _gen_ai.GenAiOperationNameValues.CHAT.value
OPERATION_EMBEDDINGS: Final = _gen_ai.GenAiOperationNameValues.EMBEDDINGS.value
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = _gen_ai.GEN_AI_EMBEDDINGS_DIMENSION_COUNT
TOKEN_TYPE_INPUT: Final = _gen_ai.GenAiTokenTypeValues.INPUT.value
TOKEN_TYPE_OUTPUT: Final = _gen_ai.GenAiTokenTypeValues.OUTPUT.value
OUTPUT_TYPE_TEXT: Final = _gen_ai.GenAiOutputTypeValues.TEXT.value
OUTPUT_TYPE_JSON: Final = _gen_ai.GenAiOutputTypeValues.JSON.value

GEN_AI_PROVIDER_BY_KIND: Final[dict[str, str]] = {
    "openai": _gen_ai.GenAiProviderNameValues.OPENAI.value,
    "anthropic": _gen_ai.GenAiProviderNameValues.ANTHROPIC.value,
    "gemini": _gen_ai.GenAiProviderNameValues.GCP_GEMINI.value,
    "vertex": _gen_ai.GenAiProviderNameValues.GCP_VERTEX_AI.value,
    "bedrock": _gen_ai.GenAiProviderNameValues.AWS_BEDROCK.value,
    "mistral": _gen_ai.GenAiProviderNameValues.MISTRAL_AI.value,
    "groq": _gen_ai.GenAiProviderNameValues.GROQ.value,
    "deepseek": _gen_ai.GenAiProviderNameValues.DEEPSEEK.value,
    "xai": _gen_ai.GenAiProviderNameValues.X_AI.value,
}
"""policyd provider kinds → the conventions' ``gen_ai.provider.name`` values; other kinds are used as they are."""


def gen_ai_provider_name(kind: str) -> str:
    return GEN_AI_PROVIDER_BY_KIND.get(kind, kind)


# ---------------------------------------------------------------- GenAI metrics

METRIC_TOKEN_USAGE: Final = _gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
METRIC_OPERATION_DURATION: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
TOKEN_USAGE_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
"""``gen_ai.client.token.usage`` explicit bucket boundaries, as the GenAI metrics spec advises."""
OPERATION_DURATION_BUCKETS: Final = tuple(0.01 * 2**i for i in range(14))
"""``gen_ai.client.operation.duration`` bucket boundaries (seconds) as the spec advises: 0.01, 0.02, ... 81.92."""

# ---------------------------------------------------------------- policyd spans

SPAN_DECISION: Final = "policyd.decision"
"""Name of the one span per request (decision), parent of every model-call span."""


def call_span_name(operation: str, request_model: str) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, as the GenAI span conventions name a call."""
    return f"{operation} {request_model}"


# ---------------------------------------------------------------- policyd attributes

POLICYD_REQUEST_ID: Final = "policyd.request_id"
POLICYD_DECISION_ID: Final = "policyd.decision_id"
POLICYD_TENANT: Final = "policyd.tenant"
POLICYD_TASK: Final = "policyd.task"
POLICYD_STAKES: Final = "policyd.stakes"
POLICYD_POLICY: Final = "policyd.policy"
POLICYD_POLICY_VERSION: Final = "policyd.policy.version"
POLICYD_RULE: Final = "policyd.rule"
POLICYD_STRATEGY: Final = "policyd.strategy"
POLICYD_OUTCOME: Final = "policyd.outcome"
POLICYD_TOTAL_COST_USD: Final = "policyd.total_cost_usd"
POLICYD_SAVED_USD: Final = "policyd.saved_usd"
POLICYD_ATTEMPT_COUNT: Final = "policyd.attempt_count"
POLICYD_MODELS: Final = "policyd.models"
POLICYD_VERDICTS: Final = "policyd.verdicts"

POLICYD_MODEL: Final = "policyd.model"
"""The catalog model id (``gen_ai.request.model`` is the upstream's name for it)."""
POLICYD_PROVIDER: Final = "policyd.provider"
"""The provider instance name from the policy file."""
POLICYD_ROLE: Final = "policyd.role"
POLICYD_EFFORT: Final = "policyd.effort"
POLICYD_ATTEMPT_INDEX: Final = "policyd.attempt.index"
POLICYD_SAMPLE_INDEX: Final = "policyd.sample_index"
POLICYD_CACHED: Final = "policyd.cached"
POLICYD_EMBED_TEXTS: Final = "policyd.embed.texts"
"""Texts an embeddings span's model embedded (those not served by the per-text cache)."""
POLICYD_EMBED_CACHED_TEXTS: Final = "policyd.embed.cached_texts"
POLICYD_COST_USD: Final = "policyd.cost_usd"
POLICYD_VERDICT: Final = "policyd.verdict"
POLICYD_VALIDATOR: Final = "policyd.validator"
POLICYD_VERDICT_REASON: Final = "policyd.verdict.reason"
"""Recorded only with content capture: a judge's reason may quote the draft."""
POLICYD_ERROR: Final = "policyd.error"
POLICYD_CACHE_RESULT: Final = "policyd.cache.result"

# ---------------------------------------------------------------- policyd metrics

METRIC_COST: Final = "policyd.cost"
METRIC_OUTCOMES: Final = "policyd.outcomes"
METRIC_CACHE_HITS: Final = "policyd.cache.hits"
METRIC_CACHE_MISSES: Final = "policyd.cache.misses"
METRIC_ESCALATIONS: Final = "policyd.escalations"
METRIC_VERDICTS: Final = "policyd.validator.verdicts"
METRIC_DECISIONS_DROPPED: Final = "policyd.decisions.dropped"
METRIC_CONFIG_RELOADS: Final = "policyd.config.reloads"
"""Policy reloads by ``policyd.reload.result`` (``applied`` or ``rejected``)."""
POLICYD_RELOAD_RESULT: Final = "policyd.reload.result"

# ---------------------------------------------------------------- events and logs

EVENT_DECISION: Final = "policyd.decision"
"""``event_name`` of the decision event as an OTel log record."""
INSTRUMENTATION_SCOPE: Final = "policyd"
