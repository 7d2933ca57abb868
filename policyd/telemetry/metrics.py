"""The metric instruments: GenAI client histograms and policyd's own counters.

Per model call (recorded by the call layer, for calls that reached an upstream):
``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage``, with the bucket
boundaries the GenAI spec advises, and cache hits and misses. Per request (recorded
from the final Outcome, whose attempts carry verdicts and costs): cost in USD,
outcomes by status, escalations and validator verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics

from policyd.telemetry import semconv as sc
from policyd.types import AttemptRole, Outcome


class Instruments:
    def __init__(self, meter: metrics.Meter) -> None:
        self.operation_duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=sc.OPERATION_DURATION_BUCKETS,
        )
        self.token_usage = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=sc.TOKEN_USAGE_BUCKETS,
        )
        self.cost = meter.create_counter(sc.METRIC_COST, unit="USD", description="USD spent on model calls.")
        self.outcomes = meter.create_counter(
            sc.METRIC_OUTCOMES, unit="{outcome}", description="Finished requests by outcome status."
        )
        self.cache_hits = meter.create_counter(
            sc.METRIC_CACHE_HITS, unit="{call}", description="Model calls answered from the response cache."
        )
        self.cache_misses = meter.create_counter(
            sc.METRIC_CACHE_MISSES,
            unit="{call}",
            description="Cacheable model calls that went to the upstream.",
        )
        self.escalations = meter.create_counter(
            sc.METRIC_ESCALATIONS, unit="{attempt}", description="Calls escalated to a stronger model or effort."
        )
        self.verdicts = meter.create_counter(
            sc.METRIC_VERDICTS, unit="{verdict}", description="Validator verdicts by kind."
        )
        self.decisions_dropped = meter.create_counter(
            sc.METRIC_DECISIONS_DROPPED,
            unit="{event}",
            description="Decision events dropped because the sink queue was full.",
        )

    def record_outcome(self, outcome: Outcome) -> None:
        e = outcome.explanation
        base: Mapping[str, Any] = {
            sc.POLICYD_POLICY: e.policy,
            sc.POLICYD_RULE: e.rule,
            sc.POLICYD_STRATEGY: e.strategy,
            sc.POLICYD_TENANT: outcome.tenant,
        }
        self.outcomes.add(1, {**base, sc.POLICYD_OUTCOME: outcome.status.value})
        for a in outcome.attempts:
            if a.cost_usd:
                self.cost.add(a.cost_usd, {**base, sc.POLICYD_MODEL: a.model, sc.POLICYD_ROLE: a.role.value})
            if a.role is AttemptRole.ESCALATE:
                self.escalations.add(1, {**base, sc.POLICYD_MODEL: a.model})
            if a.verdict is not None:
                self.verdicts.add(
                    1,
                    {
                        **base,
                        sc.POLICYD_VERDICT: a.verdict.kind.value,
                        sc.POLICYD_VALIDATOR: a.verdict.validator,
                        sc.POLICYD_MODEL: a.model,
                    },
                )
