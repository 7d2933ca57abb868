"""Builds the plugin manager and collects what plugins register.

Built-ins are registered exactly like third-party plugins: by module, through the
same code path as the ``policyd`` entry-point group. Discovery is explicit:

* ``POLICYD_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points (tests do this);
* ``POLICYD_PLUGINS_ALLOW=a,b`` loads only the named entry-point plugins;
* ``POLICYD_PLUGINS_DENY=c`` never loads the named plugins (built-ins included).

The policy file's ``plugins.allow`` / ``plugins.deny`` do the same (an entry point
must pass both allow-lists; either deny-list refuses). A plugin declaring a plugin
API this policyd cannot serve is refused at load (:mod:`policyd.plugin.compat`).
``check_pending`` runs after registration so that a misspelled hook fails at boot.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from policyd import __version__
from policyd.errors import PluginError
from policyd.plugin import PROJECT, hookspecs
from policyd.plugin.compat import check_api
from policyd.plugin.specs import Registered

ENTRY_POINT_GROUP = "policyd"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "policyd_simulated",
    "policyd_strategies",
    "policyd_validators",
    "policyd_transforms",
    "policyd_openai",
    "policyd_anthropic",
    "policyd_gemini",
    "policyd_decisions",
    "policyd_budgets",
    "policyd_replay",
)
"""First-party plugin modules, registered in this order before any entry point."""


SINGULAR = {
    "providers": "provider",
    "catalogs": "catalog",
    "strategies": "strategy",
    "validators": "validator",
    "transforms": "transform",
    "budget_stores": "budget store",
}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    origin: str
    """``builtin``, ``entry-point:<distribution>`` or ``direct``."""
    api: str | None = None
    """The plugin API version the plugin declares (``POLICYD_API``), if any."""


def _env_list(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


class PluginHost:
    """A pluggy manager plus what policyd knows about each plugin it loaded."""

    def __init__(self, *, allow: Iterable[str] | None = None, deny: Iterable[str] = ()) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.allow = None if allow is None else set(allow)
        """Entry-point plugins the policy file allows (None: no file-level allow-list)."""
        self.deny = set(deny) | _env_list("POLICYD_PLUGINS_DENY")

    def add(self, plugin: ModuleType | object, name: str, *, version: str, origin: str) -> None:
        if name in self.deny:
            return
        api = check_api(plugin, f"{name} {version}")
        try:
            self.pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(f"{name} {version}", f"cannot be registered: {exc}") from exc
        self.info[name] = PluginInfo(name=name, version=version, origin=origin, api=api)

    def remove(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)
        self.info.pop(name, None)

    def load_builtins(self, modules: Iterable[str] = BUILTIN_PLUGINS) -> None:
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PluginError(module_name, f"failed to import: {exc!r}") from exc
            self.add(module, module_name, version=__version__, origin="builtin")

    def load_entry_points(self) -> None:
        if os.environ.get("POLICYD_DISABLE_PLUGIN_AUTOLOAD"):
            return
        allow = _env_list("POLICYD_PLUGINS_ALLOW")
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (allow and ep.name not in allow) or (self.allow is not None and ep.name not in self.allow):
                continue
            if ep.name in self.deny:
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "unknown"
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"{ep.name} {version}", f"failed to load: {exc!r}") from exc
            self.add(plugin, ep.name, version=version, origin=f"entry-point:{dist}")

    def check(self) -> None:
        """Fail on hook implementations that match no hook specification."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(exc.plugin_name if hasattr(exc, "plugin_name") else "?", str(exc)) from exc

    def label(self, name: str) -> str:
        info = self.info.get(name)
        return f"{name} {info.version}" if info else name

    def collect(self) -> Registered:
        """Call every registration hook, one plugin at a time, so failures name their plugin."""
        self.check()
        reg = Registered(versions={name: info.version for name, info in self.info.items()})
        tables: dict[str, tuple[dict[str, Any], str]] = {
            "policyd_register_providers": (reg.providers, "kind"),
            "policyd_register_catalogs": (reg.catalogs, "name"),
            "policyd_register_strategies": (reg.strategies, "name"),
            "policyd_register_validators": (reg.validators, "name"),
            "policyd_register_transforms": (reg.transforms, "name"),
            "policyd_register_decision_sinks": (reg.decision_sinks, "name"),
            "policyd_register_budget_stores": (reg.budget_stores, "kind"),
        }
        for hook_name, (table, key_attr) in tables.items():
            kind = hook_name.removeprefix("policyd_register_")
            noun = SINGULAR.get(kind, kind)
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():  # registration order
                plugin_name = impl.plugin_name
                register = self._registrar(reg, table, key_attr, kind, noun, plugin_name)
                try:
                    impl.function(register=register)
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(self.label(plugin_name), f"{hook_name} raised {exc!r}") from exc
        return reg

    def _registrar(
        self, reg: Registered, table: dict[str, Any], key_attr: str, kind: str, noun: str, plugin_name: str
    ) -> Callable[[Any], None]:
        def register(spec: Any) -> None:
            key = getattr(spec, key_attr, None)
            if not isinstance(key, str) or not key:
                raise PluginError(self.label(plugin_name), f"registered a {noun} spec without a {key_attr}")
            if key in table:
                other = reg.origins[(kind, key)]
                raise PluginError(
                    self.label(plugin_name), f"{noun} {key!r} is already registered by plugin {self.label(other)}"
                )
            table[key] = spec
            reg.origins[(kind, key)] = plugin_name

        return register


def default_host(
    *, entry_points: bool = True, allow: Iterable[str] | None = None, deny: Iterable[str] = ()
) -> PluginHost:
    """The host the daemon and the CLI use: built-ins, then entry points (``allow``/``deny``: the policy file's)."""
    host = PluginHost(allow=allow, deny=deny)
    host.load_builtins()
    if entry_points:
        host.load_entry_points()
    return host
