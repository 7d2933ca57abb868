"""Repeated requests: a request whose every call was a cache hit is answered again from memory.

A request repeated byte for byte (same tenant, same body, same policy generation) whose
last run answered every call from the cache gets the same outcome again, unless the
cache has changed since. The engine's pipeline still runs around it: rate limits,
the decision span, budgets and their settlement, the ledger row, metrics and the
decision log see the request as any other. Only the ``run`` step is replaced: instead
of converting the body, matching the policy, running the strategy and hashing each
call, each call's key is looked up again exactly as the cache layer looks it up (the
writer's pending map, the entries read lately, the disk after ``reread_after_s``) and,
when every lookup returns the answer the outcome was built from, the outcome is
answered with the request's own ids and lookup times. Anything else (a lookup that
returns another answer or none, a reload, a budget that lowered the cost cap or
downgraded the policy, too little time left) runs the strategy as usual, on the same
Turn (admission is not repeated).

The reply is encoded from protobuf fields serialized once per remembered outcome plus
the fields of each request (request id, decision id, trace id, each attempt's lookup
time): a parsed reply equals ``convert.outcome_to_proto`` of the outcome (tested).

Only strategies registered ``replayable`` (``single``, ``fallback``) are remembered,
only when the cache is the outermost call layer (no telemetry exported: the ``trace`` layer
records each call) and nobody watches attempts, and only unary ``Complete``
calls without an idempotency key. ``docs/cache.md`` ("Repeated requests") describes it.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from policyd.cache.layer import RECORDING, CacheLayer, Recording
from policyd.engine.engine import Engine
from policyd.engine.pipeline import Pipeline
from policyd.engine.turn import Runtime, Turn
from policyd.ids import new_id
from policyd.server.convert import attempt_to_proto, outcome_to_proto
from policyd.types import Attempt, ModelResponse, Outcome, Request, evolve

MAX_ENTRIES = 512
MAX_BODY_BYTES = 16 * 1024
"""Bounds of the memo: at most 512 remembered requests, each body at most 16 KiB (larger ones run)."""
MIN_REMAINING_S = 1.0
"""A replay needs this much of the deadline left, or as much as the remembered run had."""


# ---------------------------------------------------------------- wire encoding


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, data: bytes) -> bytes:
    """A length-delimited field (a string or an embedded message) under its encoded ``tag``."""
    n = len(data)
    return tag + (bytes((n,)) if n < 0x80 else _varint(n)) + data


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


# CompleteResponse's fields a replay writes (proto: policyd.v1.CompleteResponse)
_REQUEST_ID, _ATTEMPT, _TRACE_ID, _DECISION_ID = _tag(1, 2), _tag(4, 2), _tag(7, 2), _tag(10, 2)
_LATENCY = _tag(9, 1)  # Attempt.latency_ms, a double
_DOUBLE = struct.Struct("<d").pack


def _attempt_prefix(a: Attempt) -> bytes:
    """The reply's attempt field up to its latency's value: the tag, the length (the latency is a
    fixed 9 bytes), the attempt's other fields serialized, the latency's tag."""
    head = attempt_to_proto(evolve(a, latency_ms=0.0)).SerializeToString()
    return _field(_ATTEMPT, head + _LATENCY + bytes(8))[:-8]


def _outcome_head(o: Outcome) -> bytes:
    """The reply's fields that every replay shares (output, status, costs, explanation), serialized."""
    return outcome_to_proto(evolve(o, request_id="", attempts=(), trace_id="", decision_id="")).SerializeToString()


# ---------------------------------------------------------------- copies


def _copier(cls: type, *changed: str) -> Callable[..., Any]:
    """A function ``(obj, *new values of changed) -> cls`` copying every other field of ``obj``: what
    ``evolve(obj, **changes)`` makes, with the fields passed by position and no dict of changes
    (a replay makes three such copies, evolve's generic way took ~2 µs each). Generated from the
    class's fields, so a field added later is copied too."""
    names = [f.name for f in fields(cls) if f.init]
    if any(f.kw_only for f in fields(cls)) or not set(changed) <= set(names):
        raise TypeError(f"cannot copy {cls.__name__} by position changing {changed}")
    args = ", ".join(name if name in changed else f"obj.{name}" for name in names)
    namespace: dict[str, Any] = {"cls": cls}
    exec(f"def copy(obj, {', '.join(changed)}):\n    return cls({args})", namespace)
    copy: Callable[..., Any] = namespace["copy"]
    copy.__qualname__ = copy.__name__ = f"copy_{cls.__name__}_with_{'_'.join(changed)}"
    return copy


_fresh_request: Callable[[Request, str, float | None], Request] = _copier(Request, "request_id", "deadline")
_timed_attempt: Callable[[Attempt, float], Attempt] = _copier(Attempt, "latency_ms")
_replayed_outcome: Callable[[Outcome, str, tuple[Attempt, ...], str], Outcome] = _copier(
    Outcome, "request_id", "attempts", "decision_id"
)


# ---------------------------------------------------------------- the memo


@dataclass(frozen=True, slots=True)
class Remembered:
    """One request's last all-hit run."""

    runtime: Runtime
    pipeline: Pipeline
    request: Request
    """The request as it was converted (its id and deadline are replaced on each replay)."""
    outcome: Outcome
    hits: tuple[tuple[str, str, ModelResponse, float], ...]
    """Each call's (key, tenant, the stored answer the lookup returned, the USD it saved)."""
    cap: float
    """The cost cap the strategy ran under."""
    held: float | None
    """What an admission step reserved for it (None: nothing; the cap came from the request and plan)."""
    min_remaining_s: float | None
    """The deadline left a replay needs (None: the run had no deadline, nor may a replay)."""
    head: bytes
    attempt_prefixes: tuple[bytes, ...]


class ReplayMemo:
    """Remembered all-hit runs by (tenant, request body), for the gRPC ``Complete`` method."""

    def __init__(self, engine: Engine, layer: CacheLayer, *, max_entries: int = MAX_ENTRIES) -> None:
        self.engine = engine
        self.layer = layer
        self.max_entries = max_entries
        self._entries: dict[tuple[str, bytes], Remembered] = {}
        self._runtime: Runtime | None = engine.runtime
        self.replayed = 0
        """Requests answered by a replay so far."""

    def __len__(self) -> int:
        return len(self._entries)

    def ticket(self, tenant: str, body: bytes) -> Ticket | None:
        """What one request needs: the remembered run of this body for this tenant, if still current;
        None when the body is too large to remember."""
        if len(body) > MAX_BODY_BYTES:
            return None
        engine = self.engine
        if engine.runtime is not self._runtime:  # a reload: what was remembered was decided on the old policy
            self._entries.clear()
            self._runtime = engine.runtime
        key = (tenant, body)
        known = self._entries.get(key)
        if known is not None and known.pipeline is not engine.pipeline:
            del self._entries[key]
            known = None
        return Ticket(self, key, known)

    def remember(
        self, key: tuple[str, bytes], turn: Turn, outcome: Outcome, cap: float, remaining: float | None
    ) -> None:
        """Keep ``outcome`` for ``key`` when its run can be replayed (see the module's docstring)."""
        recording = turn.state.get(RECORDING)
        if not isinstance(recording, Recording) or not self._replayable(turn, outcome, recording):
            self._entries.pop(key, None)
            return
        if key not in self._entries and len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[key] = Remembered(
            runtime=turn.runtime,
            pipeline=self.engine.pipeline,
            request=turn.received,
            outcome=outcome,
            hits=tuple(recording.hits),
            cap=cap,
            held=turn.reserved_usd,
            min_remaining_s=None if remaining is None else min(remaining, MIN_REMAINING_S),
            head=_outcome_head(outcome),
            attempt_prefixes=tuple(_attempt_prefix(a) for a in outcome.attempts),
        )

    def _replayable(self, turn: Turn, outcome: Outcome, recording: Recording) -> bool:
        attempts = outcome.attempts
        if not (recording.clean and recording.hits and len(recording.hits) == len(attempts)):
            return False  # a call missed, bypassed the cache, or no call was made
        if not outcome.status.is_success or outcome.output is None or outcome.tokens_saved:
            return False
        if any(not a.cached or a.error or a.verdict is not None for a in attempts):
            return False
        spec = turn.registered.strategies.get(turn.plan.strategy)
        return (
            spec is not None
            and spec.replayable
            and not turn.plan.transforms
            and turn.request is turn.received
            and not turn.notes
            and turn.progress is None
            and not turn.events.attempts
            and self.outermost()
        )

    def outermost(self) -> bool:
        """Whether the cache is the pipeline's first call layer (a hit then meets no other layer)."""
        calls = self.engine.pipeline.calls
        return bool(calls) and calls[0].step is self.layer


class Ticket:
    """One ``Complete`` call's way through the memo: replayed, or run and perhaps remembered."""

    __slots__ = ("attempts", "key", "known", "memo", "replayed")

    def __init__(self, memo: ReplayMemo, key: tuple[str, bytes], known: Remembered | None) -> None:
        self.memo = memo
        self.key = key
        self.known = known
        self.replayed = False
        self.attempts: tuple[Attempt, ...] = ()

    def request(self, deadline: float | None) -> Request | None:
        """The remembered request with a new id and this call's deadline; None when nothing is remembered."""
        known = self.known
        if known is None:
            return None
        return _fresh_request(known.request, new_id(), deadline)

    async def run(self, turn: Turn) -> Outcome:
        """The ``run`` step of this request (given to :meth:`Engine.complete`)."""
        remaining = None if turn.request.deadline is None else turn.request.deadline - time.monotonic()
        known = self.known
        if known is not None and self._may_replay(turn, known, remaining):
            outcome = self._replay(turn, known)
            if outcome is not None:
                return outcome
        memo = self.memo
        cap = turn.max_cost_usd
        turn.state[RECORDING] = Recording()
        outcome = await memo.engine.strategy_step()(turn)
        memo.remember(self.key, turn, outcome, cap, remaining)
        return outcome

    @staticmethod
    def _may_replay(turn: Turn, known: Remembered, remaining: float | None) -> bool:
        if turn.runtime is not known.runtime or turn.request is not turn.received or turn.notes:
            return False
        # Without a reservation on either run, the cap comes from the same request and plan: no need to work it out.
        if (turn.reserved_usd is not None or known.held is not None) and turn.max_cost_usd != known.cap:
            return False
        need = known.min_remaining_s
        return remaining is None if need is None else remaining is None or remaining >= need

    def _replay(self, turn: Turn, known: Remembered) -> Outcome | None:
        latencies = self.memo.layer.replay(known.hits)
        if latencies is None:
            return None  # the cache answers differently now: run the strategy
        template = known.outcome
        if len(latencies) == 1:  # one call: most plans
            self.attempts = (_timed_attempt(template.attempts[0], latencies[0]),)
        else:
            self.attempts = tuple(map(_timed_attempt, template.attempts, latencies))
        self.replayed = True
        self.memo.replayed += 1
        return _replayed_outcome(template, turn.request.request_id, self.attempts, new_id())

    def encode(self, outcome: Outcome) -> bytes | None:
        """The serialized reply to ``outcome`` when it is this ticket's replay as the pipeline left it, else None."""
        known = self.known
        if not self.replayed or known is None or outcome.attempts is not self.attempts:
            return None
        template = known.outcome
        if (
            outcome.output is not template.output
            or outcome.explanation is not template.explanation
            or outcome.status is not template.status
            or outcome.total_cost_usd != template.total_cost_usd
            or outcome.saved_usd != template.saved_usd
            or outcome.tokens_saved != template.tokens_saved
        ):
            return None
        parts = [known.head, _field(_REQUEST_ID, outcome.request_id.encode())]
        for prefix, a in zip(known.attempt_prefixes, outcome.attempts, strict=True):
            parts += (prefix, _DOUBLE(a.latency_ms))
        if outcome.trace_id:
            parts.append(_field(_TRACE_ID, outcome.trace_id.encode()))
        parts.append(_field(_DECISION_ID, outcome.decision_id.encode()))
        return b"".join(parts)
