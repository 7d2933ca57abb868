"""Naming the plugin at fault: one way to say "plugin <name> <version>: <what> raised <error>".

Every place that runs plugin code (building a provider or a budget store, running a
transform, a strategy or a validator, calling a hook) goes through :func:`attributed`,
so a failure always names the plugin and its version, never ``plugin ?``::

    with attributed(plugin_label(registered, "strategies", name), f"strategy {name!r}"):
        outcome = await spec.run(ctx)

A :class:`~policyd.errors.PolicydError` raised inside the block is policyd's own
word (a timeout, an upstream error, a budget stop) and passes through unchanged.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

from policyd.errors import PluginError, PolicydError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Origins(Protocol):
    """What :class:`~policyd.plugin.specs.Registered` offers: who registered what, and versions."""

    @property
    def origins(self) -> dict[tuple[str, str], str]: ...

    @property
    def versions(self) -> dict[str, str]: ...


def label(plugin: str, version: str | None = None) -> str:
    """``"<plugin> <version>"``, or the bare name when the version is unknown."""
    return f"{plugin} {version}" if version else plugin


def plugin_label(registered: Origins, kind: str, name: str) -> str:
    """The label of the plugin that registered ``name`` of ``kind`` (``"strategies"``, ``"providers"``...).

    An extension nobody registered (a test's hand-made spec) is labelled by its own name.
    """
    plugin = registered.origins.get((kind, name), name)
    return label(plugin, registered.versions.get(plugin))


def describe(exc: BaseException, *, full: bool = False) -> str:
    """The exception for a caller: its type name, or (``full``) its repr."""
    return repr(exc) if full else type(exc).__name__


Label = str | Callable[[], str]
"""A plugin's label, or how to make it (hot paths build it only when something failed)."""


def _label(plugin: Label) -> str:
    return plugin if isinstance(plugin, str) else plugin()


class attributed:
    """Re-raise an exception from the block as ``PluginError(plugin, f"{what} {verb} {error}")``.

    ``full`` puts the exception's repr in the message (its type name otherwise);
    ``traceback`` logs the stack trace first (plugin code the caller cannot see);
    ``passthrough=False`` wraps policyd's own errors too (a factory at start-up).
    A class, not a generator: it wraps every strategy run, so it stays cheap.
    """

    __slots__ = ("full", "passthrough", "plugin", "traceback", "verb", "what")

    def __init__(
        self,
        plugin: Label,
        what: str,
        *,
        verb: str = "raised",
        full: bool = False,
        traceback: bool = False,
        passthrough: bool = True,
    ) -> None:
        self.plugin = plugin
        self.what = what
        self.verb = verb
        self.full = full
        self.traceback = traceback
        self.passthrough = passthrough

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is None or not isinstance(exc, Exception):
            return False  # no error, or a cancellation / exit: not the plugin's to answer for
        if isinstance(exc, PolicydError) and self.passthrough:
            return False
        label = _label(self.plugin)
        if self.traceback:
            log.error("plugin %s: %s %s", label, self.what, self.verb, exc_info=exc)
        raise PluginError(label, f"{self.what} {self.verb} {describe(exc, full=self.full)}") from exc


def raise_attributed(
    plugin: Label, what: str, *, verb: str = "raised", full: bool = False, traceback: bool = False
) -> None:
    """Called in an ``except`` block: raise the current exception attributed to ``plugin``."""
    exc = sys.exc_info()[1]
    assert exc is not None, "raise_attributed is called while handling an exception"
    label = _label(plugin)
    if traceback:
        log.error("plugin %s: %s %s", label, what, verb, exc_info=exc)
    raise PluginError(label, f"{what} {verb} {describe(exc, full=full)}") from exc


def build(plugin: str, what: str, factory: Callable[..., T], *args: Any) -> T:
    """``factory(*args)`` at start-up: any failure, policyd's own errors included, names the plugin.

    ``PluginError("plugin <name> <version>: provider 'x' could not be built: ValueError('...')")``.
    """
    with attributed(plugin, what, verb="could not be built:", full=True, passthrough=False):
        return factory(*args)


def expect(value: object, kind: type[T], plugin: Label, what: str) -> T:
    """``value`` when it is a ``kind``; else PluginError naming what the plugin returned instead."""
    if not isinstance(value, kind):
        raise PluginError(_label(plugin), f"{what} returned {type(value).__name__}, not {kind.__name__}")
    return value
