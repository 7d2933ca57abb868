"""policyd-hedge: hedged requests and a word-limit validator, as a third-party plugin.

Everything a plugin needs comes from ``policyd.api``; the hooks below are the
whole contract with policyd. Installed, this package is found through its entry
point ``hedge`` in group ``policyd`` (see ``pyproject.toml``).
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import StrategySpec, ValidatorSpec, hookimpl
from policyd_hedge import hedged, word_limit

__version__ = "0.1.0"

POLICYD_API = "1.0"
"""The plugin API this plugin is written for: policyd refuses it if it provides another major."""


@hookimpl
def policyd_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    register(hedged.SPEC)


@hookimpl
def policyd_register_validators(register: Callable[[ValidatorSpec], None]) -> None:
    register(word_limit.SPEC)
