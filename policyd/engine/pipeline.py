"""The declared pipeline: the named steps every request goes through, in the order declared.

::

    admit      steps in order: Admit (take a share, may refuse) or Around (wrap the rest,
               or a Finish: stamp the answer once the rest returned)
    transform  the plan's request transforms                    (built in)
    run        the strategy over a StrategyContext on the Turn   (built in)
                 every ctx.call goes through the call layers, outermost first
    settle     each admission's settlement, innermost first, at the real cost
    record     observers of TurnStarted / AttemptRecorded / TurnFinished

The daemon declares one :class:`Pipeline` literal (``policyd.daemon.pipeline``) and a
test pins its order; a subsystem returns its parts and never edits the engine. A
part given as None (a cache that is off, no budgets) is left out, keeping the
declared order of the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from policyd.engine.turn import Events, Observe, Turn
from policyd.plugin.specs import DeltaSink
from policyd.types import Attempt, ModelCall, ModelResponse, Outcome

# ---------------------------------------------------------------- step shapes

Settle = Callable[["Outcome | None"], "Awaitable[None] | None"]
"""Releases what an admission took, given the outcome (None when the request failed)."""

Admission = Callable[[Turn], "Awaitable[Settle | None]"]
"""Admits the Turn or raises (ResourceExhausted...); returns how to settle, or None."""

Rest = Callable[[], Awaitable[Outcome]]
Wrap = Callable[[Turn, Rest], Awaitable[Outcome]]
"""Runs ``rest`` (the steps after it) inside something: a span, a scope."""

CallNext = Callable[[Turn, ModelCall, "DeltaSink | None"], Awaitable[ModelResponse]]


class Finish:
    """A Wrap that only reads or stamps the answer: ``finish(turn, outcome)`` once the rest returned.

    An :class:`Around` step may be one (the decision span with tracing off stamps the
    trace id and nothing more). The engine runs it in line, in its place among the
    settlements, instead of wrapping the rest in a coroutine of its own; called as a
    Wrap, it does the same thing. An exception from the rest passes through it untouched.
    """

    __slots__ = ("finish",)

    def __init__(self, finish: Callable[[Turn, Outcome], Outcome]) -> None:
        self.finish = finish

    async def __call__(self, turn: Turn, rest: Rest) -> Outcome:
        return self.finish(turn, await rest())


class CallLayer(Protocol):
    """Wraps every model call: ``await layer(turn, call, on_delta, next)`` returns the response."""

    async def __call__(
        self, turn: Turn, call: ModelCall, on_delta: DeltaSink | None, next: CallNext, /
    ) -> ModelResponse: ...


# ---------------------------------------------------------------- named entries


@dataclass(frozen=True)
class Admit:
    name: str
    step: Admission | None
    stage = "admit"


@dataclass(frozen=True)
class Around:
    name: str
    step: Wrap | None
    stage = "around"


@dataclass(frozen=True)
class Call:
    name: str
    step: CallLayer | None
    stage = "call"


@dataclass(frozen=True)
class Record:
    """An observer: the events it handles, by type (``{TurnFinished: ledger.record}``)."""

    name: str
    on: Mapping[type, Observe] | None
    stage = "record"


TurnStep = Admit | Around

BUILT_IN = ("transform", "run", "settle")


@dataclass(frozen=True)
class Pipeline:
    admit: tuple[TurnStep, ...] = ()
    calls: tuple[Call, ...] = ()
    record: tuple[Record, ...] = ()
    redact: Callable[[Attempt], Attempt] | None = None
    """Applied to every attempt before observers, the caller's stream or the outcome see it."""
    events: Events = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "admit", tuple(s for s in self.admit if s.step is not None))
        object.__setattr__(self, "calls", tuple(s for s in self.calls if s.step is not None))
        object.__setattr__(self, "record", tuple(s for s in self.record if s.on is not None))
        handlers: dict[type, list[Observe]] = {}
        for entry in self.record:
            assert entry.on is not None
            for kind, observe in entry.on.items():
                handlers.setdefault(kind, []).append(observe)
        names = [s.name for s in (*self.admit, *self.calls, *self.record)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pipeline step names must be unique: {', '.join(dupes)}")
        object.__setattr__(self, "events", Events({k: tuple(v) for k, v in handlers.items()}, redact=self.redact))

    def order(self) -> list[str]:
        """Every step, as ``stage:name``, in the order a request meets it (what the pin test reads)."""
        return [
            *(f"{s.stage}:{s.name}" for s in self.admit),
            "transform",
            "run",
            *(f"call:{s.name}" for s in self.calls),
            "settle",
            *(f"record:{s.name}" for s in self.record),
        ]

    def without(self, *names: str) -> Pipeline:
        """The same pipeline less the steps called ``names`` (benchmarks measure a step this way)."""
        return Pipeline(
            admit=tuple(s for s in self.admit if s.name not in names),
            calls=tuple(s for s in self.calls if s.name not in names),
            record=tuple(s for s in self.record if s.name not in names),
            redact=self.redact,
        )

    def step(self, name: str) -> Any:
        """The implementation of the step called ``name`` (for tests and tools)."""
        for entry in (*self.admit, *self.calls):
            if entry.name == name:
                return entry.step
        for rec in self.record:
            if rec.name == name:
                return rec.on
        raise KeyError(name)


EMPTY = Pipeline()
