"""Hook specifications: the whole surface a plugin can implement.

Every hook runs once, at start-up (and again on a policy reload), and receives a
``register`` callback. The engine keeps what was registered in plain dicts and
calls it directly, so the request path never goes through pluggy. Hooks are
synchronous; what they register may be async.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from policyd.plugin import hookspec

if TYPE_CHECKING:
    from policyd.plugin.specs import (
        BudgetStoreSpec,
        CatalogSpec,
        DecisionSinkSpec,
        ProviderSpec,
        StrategySpec,
        TransformSpec,
        ValidatorSpec,
    )

# ---------------------------------------------------------------- upstreams


@hookspec
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register provider kinds: code that turns a ModelCall into an upstream's wire format.

    Called once at start-up.

    :param register: call with one :class:`policyd.plugin.specs.ProviderSpec` per
        provider kind (``kind`` must be unique across all plugins).
    :returns: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


@hookspec
def policyd_register_catalogs(register: Callable[[CatalogSpec], None]) -> None:
    """Register model catalogs: named lists of :class:`policyd.types.ModelSpec`.

    Called once at start-up. The policy file's ``models:`` section may add models
    and override fields of catalog entries.

    :param register: call with one :class:`policyd.plugin.specs.CatalogSpec` per catalog.
    :returns: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------- decisions


@hookspec
def policyd_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    """Register strategies: ``async def run(ctx) -> Outcome`` functions with typed parameters.

    Called once at start-up. A plan in the policy file names a strategy and gives its
    parameters, which are validated against the spec's ``params`` model at load time.

    :param register: call with one :class:`policyd.plugin.specs.StrategySpec` per strategy.
    :returns: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


@hookspec
def policyd_register_validators(register: Callable[[ValidatorSpec], None]) -> None:
    """Register validators: judges that accept, reject or repair a draft.

    Called once at start-up. Plans refer to validators by name with parameters that
    are validated against the spec's ``params`` model at load time.

    :param register: call with one :class:`policyd.plugin.specs.ValidatorSpec` per validator.
    :returns: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


@hookspec
def policyd_register_transforms(register: Callable[[TransformSpec], None]) -> None:
    """Register request transforms: rewrites of a request before its strategy runs.

    Called once at start-up. Plans list the transforms to apply, in order.

    :param register: call with one :class:`policyd.plugin.specs.TransformSpec` per transform.
    :returns: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------- telemetry


@hookspec
def policyd_register_decision_sinks(register: Callable[[DecisionSinkSpec], None]) -> None:
    """Register decision sinks: destinations for the versioned decision event of each request.

    Called once at start-up. The policy file's ``telemetry.decisions.sinks`` names the
    sinks to use, with parameters validated against the spec's ``params`` model. Sinks
    receive events on a worker thread, never on the request path.

    :param register: call with one :class:`policyd.plugin.specs.DecisionSinkSpec` per sink.
    :returns: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------- accounting


@hookspec
def policyd_register_budget_stores(register: Callable[[BudgetStoreSpec], None]) -> None:
    """Register budget stores: where tenant and policy budgets count reserved and spent USD.

    Called once at start-up. The policy file's ``budgets.store.kind`` picks one (default
    ``local``: in memory, seeded from this daemon's ledger); a shared store (e.g. Redis)
    lets several replicas enforce one budget. See ``docs/ledger.md``.

    :param register: call with one :class:`policyd.plugin.specs.BudgetStoreSpec` per store kind
        (``kind`` must be unique across all plugins).
    :returns: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """
