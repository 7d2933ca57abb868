"""The policies the benchmark runs, and which of them this build can run.

Scenario (c) is a single-model passthrough to the fake upstream through the
``openai-compatible`` provider; (e) a two-rung ladder whose first rung fails. When a
plugin a scenario needs is not installed, the scenario says what it fell back to (or
that it was skipped) instead of silently measuring something else.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from policyd.config.schema import FileConfig
from policyd.plugin.manager import default_host

MODEL = """
      {name}:
        provider: {provider}
        upstream: {upstream}
        input_usd_per_mtok: 0.1
        output_usd_per_mtok: 0.4
        context_window: 32000
        license: apache-2.0
        options: {options}
"""


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    config: str | None
    """Policy file text; None when the scenario cannot run in this build."""
    note: str = ""
    loadgen_args: tuple[str, ...] = ()
    """Extra flags of the load generator (``--unique``: no prompt repeated)."""


def _available() -> tuple[set[str], set[str]]:
    reg = default_host(entry_points=False).collect()
    return set(reg.providers), set(reg.strategies)


def _provider(upstream_url: str, providers: set[str]) -> tuple[str, str, str]:
    """(providers section, provider name, note) for the fake upstream, or the simulated fallback."""
    if "openai-compatible" in providers:
        section = f"""
    providers:
      fake: {{kind: openai-compatible, base_url: "{upstream_url}/v1"}}
      fake-failing: {{kind: openai-compatible, base_url: "{upstream_url}/v1"}}
"""
        return section, "fake", ""
    section = """
    providers:
      simulated: {kind: simulated, latency_scale: 0.0}
"""
    return section, "simulated", "openai-compatible provider not installed: the simulated provider answered in-process"


def _config(providers: str, models: str, plan: str) -> str:
    text = f"""
    version: bench
    defaults: {{max_cost_usd: 10.0, deadline_ms: 10000}}
    {providers.strip()}
    catalogs: []
    models:
    {models}
    policies:
      default:
        rules:
          - name: bench
            plan: {plan}
    """
    return textwrap.dedent(text)


def scenarios(upstream_url: str) -> list[Scenario]:
    providers, strategies = _available()
    section, provider, note = _provider(upstream_url, providers)
    simulated = provider == "simulated"
    has_cache = "cache" in FileConfig.model_fields  # every request repeats one prompt: all hits after the first
    good = MODEL.format(name="bench-model", provider=provider, upstream="bench-model", options="{}")
    failing = MODEL.format(
        name="fail-model",
        # Its own provider instance: a failing upstream must not open the healthy one's circuit breaker.
        provider=provider if simulated else "fake-failing",
        upstream="fail-model",
        options="{simulated: {error_rate: 1.0}}" if simulated else "{}",
    )
    passthrough = _config(section, good, "{strategy: single, params: {model: bench-model}, cache: {enabled: false}}")
    ladder = "{strategy: fallback, params: {models: [fail-model, bench-model]}, cache: {enabled: false}}"
    ladder_note = "fail-fast strategy not installed: measured with fallback (next rung on error)"
    if "fail-fast" in strategies:
        rungs = (
            "[{model: fail-model, gate: {name: regex, params: {pattern: '.'}}}, {model: bench-model, ungated: true}]"
        )
        ladder = f"{{strategy: fail-fast, params: {{rungs: {rungs}}}, cache: {{enabled: false}}}}"
        ladder_note = ""
    default = _config(section, good, "{strategy: single, params: {model: bench-model}}")
    return [
        Scenario("passthrough", "(c) policyd, single-model passthrough", passthrough, note),
        Scenario(
            "default",
            "(c') policyd passthrough, default config (cache and ledger on, no prompt repeated)",
            default if has_cache else None,
            note,
            ("--unique",),
        ),
        Scenario(
            "cache",
            "(d) policyd, cache hits",
            _config(section, good, "{strategy: single, params: {model: bench-model}}") if has_cache else None,
            "" if has_cache else "not measured: the response cache (issue #5) is not in this build",
        ),
        Scenario(
            "failfast",
            "(e) policyd, ladder with one failing rung",
            _config(section, good + failing, ladder),
            "; ".join(n for n in (note, ladder_note) if n),
        ),
    ]


def hotpath_scenarios(upstream_url: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Issue #21's hot-path scenarios: (key, policy file, extra load-generator flags).

    ``default`` is what users get: the default config (cache and ledger on) with every
    prompt distinct, so each request misses the cache, calls the upstream and stores the
    answer. ``nocache`` is (c) above (the cache off); ``cache`` is (d) (every request a hit).
    """
    section, _, _ = _provider(upstream_url, _available()[0])
    good = MODEL.format(name="bench-model", provider="fake", upstream="bench-model", options="{}")
    single = "{strategy: single, params: {model: bench-model}}"
    off = "{strategy: single, params: {model: bench-model}, cache: {enabled: false}}"
    return [
        ("default", _config(section, good, single), ("--unique",)),
        ("nocache", _config(section, good, off), ()),
        ("cache", _config(section, good, single), ()),
    ]
