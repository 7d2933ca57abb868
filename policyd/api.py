"""The public plugin API: everything a plugin may import from policyd, in one place.

A plugin imports from ``policyd.api`` only (and tests from ``policyd.testing``).
Every other module under ``policyd`` is private: it may change in any release.
What is here changes only with the plugin API version (:data:`API_VERSION`): a
minor version only adds, a major one may remove or change. ``docs/plugins.md``
documents each name; ``tests/plugin/test_public_api.py`` keeps this list and the
first-party plugins honest.

Declare the API your plugin was written for with a module attribute::

    POLICYD_API = "1.0"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policyd import __version__ as POLICYD_VERSION
from policyd.embedding import (
    EMBED_STRATEGY,
    EMBEDDING_TAG,
    EmbedCall,
    EmbeddingProvider,
    EmbedParams,
    EmbedResponse,
    dimensions_problem,
    model_dimensions,
    vector,
)
from policyd.engine import tokens
from policyd.engine.stops import OutOfBudget, OutOfTime, StrategyStop
from policyd.errors import (
    ConfigError,
    FailedPrecondition,
    InvalidArgument,
    PluginError,
    PluginTimeout,
    PolicydError,
    UpstreamError,
)
from policyd.plugin import hookimpl
from policyd.plugin.compat import API_VERSION
from policyd.plugin.specs import (
    BudgetLine,
    BudgetRefusal,
    BudgetStore,
    BudgetStoreContext,
    BudgetStoreSpec,
    CallResult,
    CatalogSpec,
    DecisionSink,
    DecisionSinkSpec,
    DeltaSink,
    EffortParam,
    ExplainContext,
    NoParams,
    Provider,
    ProviderSpec,
    SinkContext,
    StrategyContext,
    StrategyFn,
    StrategySpec,
    TransformResult,
    TransformSpec,
    Validator,
    ValidatorRef,
    ValidatorSpec,
)
from policyd.telemetry import semconv
from policyd.telemetry.propagation import inject_headers
from policyd.types import (
    EFFORT_LADDER,
    Attempt,
    AttemptRole,
    CacheMode,
    Constraints,
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
    ResponseFormat,
    Role,
    Stakes,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
    Verdict,
    VerdictKind,
)

if TYPE_CHECKING:
    from policyd.eval.routerfile import Router, Vectorizer
    from policyd.eval.routerfile import load as load_router

_ROUTER_FILE = {"Router": "Router", "Vectorizer": "Vectorizer", "load_router": "load"}
"""Names of ``policyd.eval.routerfile`` served on first access (PEP 562): the daemon imports
the eval package only when a router is used (docs/deploy.md, "Start-up")."""


def __getattr__(name: str) -> Any:
    if name in _ROUTER_FILE:
        from policyd.eval import routerfile

        value = getattr(routerfile, _ROUTER_FILE[name])
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "API_VERSION",
    "EFFORT_LADDER",
    "EMBEDDING_TAG",
    "EMBED_STRATEGY",
    "POLICYD_VERSION",
    "Attempt",
    "AttemptRole",
    "BudgetLine",
    "BudgetRefusal",
    "BudgetStore",
    "BudgetStoreContext",
    "BudgetStoreSpec",
    "CacheMode",
    "CallResult",
    "CatalogSpec",
    "ConfigError",
    "Constraints",
    "DecisionSink",
    "DecisionSinkSpec",
    "DeltaSink",
    "Effort",
    "EffortParam",
    "EmbedCall",
    "EmbedParams",
    "EmbedResponse",
    "EmbeddingProvider",
    "ExplainContext",
    "Explanation",
    "FailedPrecondition",
    "GenerationParams",
    "InvalidArgument",
    "Message",
    "ModelCall",
    "ModelResponse",
    "ModelSpec",
    "NoParams",
    "OutOfBudget",
    "OutOfTime",
    "Outcome",
    "OutcomeStatus",
    "PlanStep",
    "PluginError",
    "PluginTimeout",
    "PolicydError",
    "Provider",
    "ProviderSpec",
    "Request",
    "ResponseFormat",
    "Role",
    "Router",
    "SinkContext",
    "Stakes",
    "StrategyContext",
    "StrategyFn",
    "StrategySpec",
    "StrategyStop",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "TransformResult",
    "TransformSpec",
    "UpstreamError",
    "Usage",
    "Validator",
    "ValidatorRef",
    "ValidatorSpec",
    "Vectorizer",
    "Verdict",
    "VerdictKind",
    "dimensions_problem",
    "hookimpl",
    "inject_headers",
    "load_router",
    "model_dimensions",
    "semconv",
    "tokens",
    "vector",
]
