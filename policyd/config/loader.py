"""Loads a policy file into an immutable Config, checked against the registered plugins.

Every error names the file, the key path and what was expected, e.g.
``policy.yaml: policies.coding.rules[2].plan.strategy: unknown strategy 'draft-validat'
(known: fallback, single); did you mean 'draft-validate'?``.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from policyd.config.embed_checks import embed_plan_problem
from policyd.config.keys import known_keys
from policyd.config.model import Config, Plan, Policy, ProviderInstance, Rule
from policyd.config.schema import FileConfig, ModelConfig, PlanConfig, ProviderConfig
from policyd.config.security import check_security_sections
from policyd.embedding import EMBED_STRATEGY
from policyd.errors import ConfigError
from policyd.ledger.checks import check_budgets
from policyd.plugin.attribution import build, plugin_label
from policyd.plugin.specs import Registered, Validator, ValidatorRef, validator_key
from policyd.types import ModelSpec

BUNDLED_DEFAULT = "<bundled default>"


def format_loc(loc: Iterable[Any]) -> str:
    """``('policies', 'a', 'rules', 2, 'plan')`` → ``policies.a.rules[2].plan``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _join(prefix: str, loc: Iterable[Any]) -> str:
    rest = format_loc(loc)
    if not rest or not prefix:
        return prefix or rest
    return f"{prefix}{rest}" if rest.startswith("[") else f"{prefix}.{rest}"


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    msg = f"unknown {what} {name!r} (known: {', '.join(known) or 'none'})"
    close = difflib.get_close_matches(name, known, n=1)
    return f"{msg}; did you mean {close[0]!r}?" if close else msg


class _Loader:
    def __init__(self, source: str, registered: Registered) -> None:
        self.source = source
        self.reg = registered

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(self.source, path, problem)

    def validate(self, model: type[BaseModel], data: Any, prefix: str) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = []
            # A misspelt key also makes the real one "missing": report the typo first.
            for err in sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden"):
                problem = _describe(err)
                if err.get("type") == "extra_forbidden":
                    known = known_keys(model, err["loc"][:-1])
                    if known:
                        problem = _unknown("key", str(err["loc"][-1]), known)
                problems.append((_join(prefix, err["loc"]), problem))
            path, problem = problems[0]
            if len(problems) > 1:
                more = "; ".join(f"{p}: {m}" for p, m in problems[1:4])
                problem += f" (and {len(problems) - 1} more: {more})"
            raise self.fail(path, problem) from None

    # ------------------------------------------------------------ sections

    def providers(self, raw: FileConfig) -> dict[str, ProviderInstance]:
        out: dict[str, ProviderInstance] = {}
        configured = dict(raw.providers)
        if "simulated" in self.reg.providers and "simulated" not in configured:
            configured["simulated"] = ProviderConfig(kind="simulated")
        errors: list[ConfigError] = []
        for name, cfg in configured.items():
            spec = self.reg.providers.get(cfg.kind)
            if spec is None:
                raise self.fail(f"providers.{name}.kind", _unknown("provider kind", cfg.kind, self.reg.providers))
            try:
                settings = self.validate(spec.settings, cfg.model_extra or {}, f"providers.{name}")
            except ConfigError as exc:  # keep going: name every unset key variable at once
                errors.append(exc)
                continue
            out[name] = ProviderInstance(name=name, kind=cfg.kind, settings=settings)
        if errors:
            first, rest = errors[0], errors[1:]
            more = "; ".join(f"{e.path}: {e.problem}" for e in rest)
            raise self.fail(first.path, f"{first.problem} (and {len(rest)} more: {more})" if rest else first.problem)
        return out

    def catalog(self, raw: FileConfig) -> dict[str, ModelSpec]:
        names = raw.catalogs if raw.catalogs is not None else list(self.reg.catalogs)
        models: dict[str, ModelSpec] = {}
        for i, name in enumerate(names):
            spec = self.reg.catalogs.get(name)
            if spec is None:
                raise self.fail(f"catalogs[{i}]", _unknown("catalog", name, self.reg.catalogs))
            for model in spec.models:
                models[model.id] = model
        for model_id, override in raw.models.items():
            models[model_id] = self._model(model_id, override, models.get(model_id))
        return models

    def _model(self, model_id: str, cfg: ModelConfig, base: ModelSpec | None) -> ModelSpec:
        given = cfg.model_dump(exclude_none=True)
        if "tags" in given:
            given["tags"] = frozenset(given["tags"])
        if base is not None:
            return replace(base, **given)
        required = ["provider", "upstream", "input_usd_per_mtok", "output_usd_per_mtok", "context_window", "license"]
        missing = [key for key in required if key not in given]
        if missing:
            raise self.fail(
                f"models.{model_id}",
                f"not in any catalog, so it needs {', '.join(missing)}",
            )
        return ModelSpec(id=model_id, **given)

    def policies(
        self, raw: FileConfig, catalog: dict[str, ModelSpec], providers: dict[str, ProviderInstance]
    ) -> tuple[dict[str, Policy], dict[str, Validator]]:
        validators: dict[str, Validator] = {}
        policies: dict[str, Policy] = {}
        for pname, pcfg in raw.policies.items():
            rules = []
            for i, rcfg in enumerate(pcfg.rules):
                prefix = f"policies.{pname}.rules[{i}].plan"
                plan = self.plan(rcfg.plan, prefix, catalog, providers, validators)
                rules.append(Rule(name=rcfg.name, description=rcfg.description, match=rcfg.match, plan=plan))
            policies[pname] = Policy(name=pname, description=pcfg.description, rules=tuple(rules))
        if raw.defaults.policy not in policies:
            raise self.fail("defaults.policy", _unknown("policy", raw.defaults.policy, policies))
        return policies, validators

    def plan(
        self,
        cfg: PlanConfig,
        prefix: str,
        catalog: dict[str, ModelSpec],
        providers: dict[str, ProviderInstance],
        validators: dict[str, Validator],
    ) -> Plan:
        spec = self.reg.strategies.get(cfg.strategy)
        if spec is None:
            raise self.fail(f"{prefix}.strategy", _unknown("strategy", cfg.strategy, self.reg.strategies))
        params = self.validate(spec.params, cfg.params, f"{prefix}.params")
        models = tuple(spec.models(params))
        for model_id in models:
            self.check_model(model_id, f"{prefix}.params", catalog, providers)
        if cfg.strategy == EMBED_STRATEGY:
            problem = embed_plan_problem(params, len(cfg.transforms), catalog, providers, self.reg)
            if problem is not None:
                key = problem[0] if problem[0] == "transforms" else f"params.{problem[0]}"
                raise self.fail(f"{prefix}.{key}", problem[1])
        for ref in spec.validators(params):
            key = validator_key(ref)
            if key not in validators:
                validators[key] = self.build_validator(ref, f"{prefix}.params", catalog, providers)
        transforms = []
        for j, tref in enumerate(cfg.transforms):
            tspec = self.reg.transforms.get(tref.name)
            if tspec is None:
                raise self.fail(f"{prefix}.transforms[{j}].name", _unknown("transform", tref.name, self.reg.transforms))
            tparams = self.validate(tspec.params, tref.params, f"{prefix}.transforms[{j}].params")
            transforms.append((tspec, tparams))
        return Plan(
            strategy=cfg.strategy,
            params=params,
            models=models,
            transforms=tuple(transforms),
            cache_enabled=cfg.cache.enabled,
            cache_ttl_s=cfg.cache.ttl_s,
            max_cost_usd=cfg.max_cost_usd,
            stream_draft=cfg.stream_draft,
        )

    def check_model(
        self, model_id: str, path: str, catalog: dict[str, ModelSpec], providers: dict[str, ProviderInstance]
    ) -> None:
        model = catalog.get(model_id)
        if model is None:
            raise self.fail(path, _unknown("model", model_id, catalog))
        if model.provider not in providers:
            raise self.fail(
                f"models.{model_id}.provider",
                f"{_unknown('provider', model.provider, providers)} (used by {path})",
            )

    def build_validator(
        self,
        ref: ValidatorRef,
        path: str,
        catalog: dict[str, ModelSpec],
        providers: dict[str, ProviderInstance],
    ) -> Validator:
        vspec = self.reg.validators.get(ref.name)
        if vspec is None:
            raise self.fail(path, _unknown("validator", ref.name, self.reg.validators))
        if vspec.needs_model and not ref.model:
            raise self.fail(path, f"validator {ref.name!r} needs a model")
        if ref.model:
            self.check_model(ref.model, path, catalog, providers)
        params = self.validate(vspec.params, ref.params, f"{path} (validator {ref.name})")
        return build(
            plugin_label(self.reg, "validators", ref.name), f"validator {ref.name!r}", vspec.factory, ref, params
        )


def _describe(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(err.get("msg", "invalid"))
    if kind == "value_error":  # our own validators' words, without pydantic's "Value error, " prefix
        msg = msg.removeprefix("Value error, ")
        given = err.get("input")
        if isinstance(given, str) and given and given in msg:
            return msg
    if "input" in err and not isinstance(err["input"], (dict, list)):
        return f"{msg} (got {err['input']!r})"
    return msg


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it (~9x faster on the bundled default: start-up), else PyYAML's."""


def parse_text(text: str, source: str) -> Any:
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, where, f"not valid YAML: {problem}") from None
    if data is None:
        raise ConfigError(source, "", "the file is empty (a policy file needs at least a policies: section)")
    if not isinstance(data, dict):
        raise ConfigError(source, "", f"expected a mapping at the top level, got {type(data).__name__}")
    return data


MERGED_SECTIONS = ("providers", "models", "policies")
"""Sections a layered file merges into the bundled default's by name; every other section replaces."""


def layered(data: dict[str, Any], source: str) -> tuple[dict[str, Any], bool]:
    """The file's sections over the bundled default when it says ``extends: default``.

    ``providers``, ``models`` and ``policies`` are merged by name (a same-named entry
    replaces the bundled one); any other section the file has replaces the bundled one.
    Returns the document and whether it was layered.
    """
    base_name = data.pop("extends", None)
    if base_name is None:
        if "policies" not in data:
            raise ConfigError(
                source,
                "policies",
                "is required (or start the file with `extends: default` to layer its sections over the "
                "bundled default policy)",
            )
        return data, False
    if base_name != "default":
        raise ConfigError(
            source, "extends", f"only 'default' (the bundled default policy) can be extended (got {base_name!r})"
        )
    base = parse_text(bundled_default_text(), BUNDLED_DEFAULT)
    out = {key: value for key, value in base.items() if key != "version"}  # the layered file is not the default
    for key, value in data.items():
        if key in MERGED_SECTIONS and isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = {**base[key], **value}
        else:
            out[key] = value
    return out, True


def load_text(text: str, registered: Registered, source: str = "<string>") -> Config:
    loader = _Loader(source, registered)
    data, extended = layered(parse_text(text, source), source)
    raw: FileConfig = loader.validate(FileConfig, data, "")
    providers = loader.providers(raw)
    catalog = loader.catalog(raw)
    policies, validators = loader.policies(raw, catalog, providers)
    check_security_sections(source, raw.auth, policies)
    check_budgets(source, raw.budgets, policies, registered)
    for name in raw.plugins.per_plugin:
        if name not in registered.versions:
            raise loader.fail(f"plugins.per_plugin.{name}", _unknown("plugin", name, registered.versions))
    hashed = bundled_default_text() + text if extended else text
    version = raw.version or hashlib.sha256(hashed.encode()).hexdigest()[:12]
    return Config(
        source=source,
        version=version,
        defaults=raw.defaults,
        providers=providers,
        catalog=catalog,
        policies=policies,
        validators=validators,
        raw=raw,
    )


def load_file(path: str | Path, registered: Registered) -> Config:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(source, "", "not UTF-8 text") from None
    return load_text(text, registered, source)


def bundled_default_text() -> str:
    return resources.files("policyd.config").joinpath("default.yaml").read_text(encoding="utf-8")


def load_default(registered: Registered) -> Config:
    return load_text(bundled_default_text(), registered, BUNDLED_DEFAULT)


def load(path: str | Path | None, registered: Registered) -> Config:
    return load_default(registered) if path is None else load_file(path, registered)


__all__: Sequence[str] = ["format_loc", "load", "load_default", "load_file", "load_text", "validator_key"]
