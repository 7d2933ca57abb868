"""Builds the plugin manager and collects what plugins register.

Built-ins are registered exactly like third-party plugins: by module, through the
same code path as the ``policyd`` entry-point group. Discovery is explicit:

* ``POLICYD_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points (tests do this);
* ``POLICYD_PLUGINS_ALLOW=a,b`` loads only the named entry-point plugins;
* ``POLICYD_PLUGINS_DENY=c`` never loads the named plugins (built-ins included).

The policy file's ``plugins.allow`` / ``plugins.deny`` do the same (an entry point
must pass both allow-lists; either deny-list refuses). A plugin declaring a plugin
API this policyd cannot serve is refused at load (:mod:`policyd.plugin.compat`).
``check`` runs after registration so that a misspelled hook fails at boot, naming the
plugin, its version and the closest hook name.

Hooks are called through pluggy's hook caller (``pm.hook.<name>``), never the
implementations directly, so ``wrapper=True``/``hookwrapper=True``, ``tryfirst``/``trylast``
and ``firstresult`` keep the meaning pluggy documents. An exception from a hook is
attributed to the plugin whose implementation raised it (:meth:`PluginHost.call`), and
each ``register`` call to the plugin whose implementation made it: a plugin is registered
with pluggy as a proxy whose hook functions are the plugin's own, wrapped so that the host
knows which plugin's code is running (:func:`_attributed`; pluggy reads the same options
and signatures through ``functools.wraps``).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

import pluggy

from policyd import __version__, discovery
from policyd.errors import PluginError
from policyd.plugin import PROJECT, hookspecs
from policyd.plugin.compat import check_api
from policyd.plugin.specs import Registered

ENTRY_POINT_GROUP = "policyd"

BUILTIN_PLUGINS: dict[str, str] = {
    "policyd_simulated": "policyd_plugins.simulated",
    "policyd_strategies": "policyd_plugins.strategies",
    "policyd_validators": "policyd_plugins.validators",
    "policyd_transforms": "policyd_plugins.transforms",
    "policyd_openai": "policyd_plugins.openai",
    "policyd_anthropic": "policyd_plugins.anthropic",
    "policyd_gemini": "policyd_plugins.gemini",
    "policyd_decisions": "policyd_plugins.decisions",
    "policyd_budgets": "policyd_plugins.budgets",
    "policyd_replay": "policyd_plugins.replay",
}
"""First-party plugins (plugin name → module), registered in this order before any entry point.

The plugin name is what deny-lists, errors and ``policyd plugins`` show."""


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
        self.running: list[str] = []
        """The plugins whose hook code is running, innermost last (pluggy calls are synchronous)."""

    def add(self, plugin: ModuleType | object, name: str, *, version: str, origin: str) -> None:
        if name in self.deny:
            return
        api = check_api(plugin, f"{name} {version}")
        try:
            self.pm.register(self._proxy(plugin, name), name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"{name} {version}", f"cannot be registered: {exc}") from exc
        self.info[name] = PluginInfo(name=name, version=version, origin=origin, api=api)

    def remove(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)
        self.info.pop(name, None)

    def load_builtins(self, plugins: Mapping[str, str] = BUILTIN_PLUGINS) -> None:
        """Register first-party plugins (name → module) through the same path as entry points."""
        for name, module_name in plugins.items():
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PluginError(name, f"failed to import {module_name}: {exc!r}") from exc
            self.add(module, name, version=__version__, origin="builtin")

    def load_entry_points(self) -> None:
        if os.environ.get("POLICYD_DISABLE_PLUGIN_AUTOLOAD"):
            return
        allow = _env_list("POLICYD_PLUGINS_ALLOW")
        for ep in discovery.entry_points(ENTRY_POINT_GROUP):  # ``policyd serve`` scanned it already
            if (allow and ep.name not in allow) or (self.allow is not None and ep.name not in self.allow):
                continue
            if ep.name in self.deny:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"{ep.name} {ep.version}", f"failed to load: {exc!r}") from exc
            self.add(plugin, ep.name, version=ep.version, origin=f"entry-point:{ep.dist}")

    def hook_names(self) -> list[str]:
        """The hooks this host specifies (every ``policyd_*`` hook in :mod:`policyd.plugin.hookspecs`)."""
        return sorted(name for name, caller in vars(self.pm.hook).items() if caller.has_spec())

    def check(self) -> None:
        """Fail on hook implementations that match no hook specification (a misspelled hook).

        The error names the plugin, its version and the closest hook name.
        """
        known = self.hook_names()
        for name, caller in sorted(vars(self.pm.hook).items()):
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known hooks: {', '.join(known)}"
                raise PluginError(self.label(impl.plugin_name), f"implements unknown hook {name!r}; {hint}")
        try:
            self.pm.check_pending()  # anything else pluggy itself refuses
        except pluggy.PluginValidationError as exc:
            raise PluginError(self.label(self.pm.get_name(exc.plugin) or "?"), str(exc)) from exc

    def label(self, name: str) -> str:
        """``name version`` (the distribution's version for an entry-point plugin)."""
        info = self.info.get(name)
        return f"{name} {info.version}" if info else name

    def call(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a hook through pluggy's hook caller and return what pluggy returns.

        Wrappers, ``tryfirst``/``trylast`` and ``firstresult`` apply as pluggy documents.
        An exception raised by an implementation becomes a :class:`PluginError` naming the
        plugin (and version) whose code raised it; a ``PluginError`` passes through as is.
        """
        try:
            return getattr(self.pm.hook, hook_name)(**kwargs)
        except PluginError:
            raise
        except Exception as exc:
            culprit = getattr(exc, _BLAME, None)
            who = self.label(culprit) if isinstance(culprit, str) else "?"
            raise PluginError(who, f"{hook_name} raised {exc!r}") from exc

    def _proxy(self, plugin: object, name: str) -> SimpleNamespace:
        """What pluggy registers for ``plugin``: its hook implementations, each wrapped by :func:`_attributed`."""
        hooks: dict[str, Any] = {}
        for attr in dir(plugin):
            if self.pm.parse_hookimpl_opts(plugin, attr) is not None:
                hooks[attr] = _attributed(getattr(plugin, attr), name, self.running)
        return SimpleNamespace(**hooks)

    def collect(self) -> Registered:
        """Call every registration hook; failures and each registration name their plugin."""
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
            self.call(hook_name, register=self._registrar(reg, table, key_attr, kind, hook_name))
        return reg

    def _registrar(
        self, reg: Registered, table: dict[str, Any], key_attr: str, kind: str, hook_name: str
    ) -> Callable[[Any], None]:
        """The ``register`` callback of one hook: it files each spec under the plugin that called it."""
        noun = SINGULAR.get(kind, kind)
        load_order = list(self.info)

        def register(spec: Any) -> None:
            if not self.running:
                raise PluginError("?", f"a {noun} was registered from outside a {hook_name} implementation")
            plugin_name = self.running[-1]
            key = getattr(spec, key_attr, None)
            if not isinstance(key, str) or not key:
                raise PluginError(self.label(plugin_name), f"registered a {noun} spec without a {key_attr}")
            if key in table:
                # Blame the plugin loaded later, whatever order pluggy called them in.
                first, second = sorted((reg.origins[(kind, key)], plugin_name), key=_position(load_order))
                raise PluginError(
                    self.label(second), f"{noun} {key!r} is already registered by plugin {self.label(first)}"
                )
            table[key] = spec
            reg.origins[(kind, key)] = plugin_name

        return register


def _position(order: list[str]) -> Callable[[str], int]:
    return lambda name: order.index(name) if name in order else len(order)


_BLAME = "__policyd_plugin__"
"""The attribute naming the plugin an exception came from (set once, by the innermost plugin)."""


def _blame(exc: BaseException, plugin: str) -> None:
    if getattr(exc, _BLAME, None) is None:
        try:
            setattr(exc, _BLAME, plugin)
        except (AttributeError, TypeError):  # an exception type without a __dict__
            pass


def _attributed(fn: Callable[..., Any], plugin: str, running: list[str]) -> Callable[..., Any]:
    """``fn`` (a hook implementation of ``plugin``) marking ``plugin`` as running while its code runs.

    ``functools.wraps`` keeps the hookimpl marker and the signature pluggy reads. A wrapper
    (``wrapper=True`` or ``hookwrapper=True``) is a generator: the proxy is one too, and
    marks the plugin around each step, so code after ``yield`` is attributed as well.
    """

    @contextmanager
    def marked() -> Iterator[None]:
        running.append(plugin)
        try:
            yield
        except Exception as exc:
            _blame(exc, plugin)
            raise
        finally:
            running.pop()

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            with marked():
                gen = fn(*args, **kwargs)
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                with marked():
                    try:
                        item = gen.send(sent) if thrown is None else gen.throw(thrown)
                    except StopIteration as stop:
                        return stop.value
                try:
                    sent, thrown = (yield item), None
                except BaseException as exc:  # pluggy throws an inner failure into the wrapper
                    sent, thrown = None, exc

        return steps

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with marked():
            return fn(*args, **kwargs)

    return call


def default_host(
    *, entry_points: bool = True, allow: Iterable[str] | None = None, deny: Iterable[str] = ()
) -> PluginHost:
    """The host the daemon and the CLI use: built-ins, then entry points (``allow``/``deny``: the policy file's)."""
    host = PluginHost(allow=allow, deny=deny)
    host.load_builtins()
    if entry_points:
        host.load_entry_points()
    return host
