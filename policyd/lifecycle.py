"""What the daemon refuses at start and what it bounds at stop.

- :func:`require_data_dir`: the cache and the ledger live in the data directory. A daemon
  that cannot write there would still answer, but without either (every call paid again,
  no outcomes, no stats, budgets from zero), and its health would say SERVING. It stops
  instead, naming the directory and the fix, unless the policy file turns both off.
- :func:`bounded_close`: exporting to a collector that is down retries for tens of
  seconds, past a pod's termination grace. The telemetry flush gets one total limit
  (``POLICYD_TELEMETRY_FLUSH_S``); what is still buffered then is dropped and said so.
- :func:`collector_paused`: start-up (importing ~500 modules, building plugins, config and
  stores) allocates much and frees little; the garbage collector's ~120 passes over it were
  about a tenth of ``policyd serve``'s start-up, for nothing (docs/deploy.md, "Start-up").
- :func:`settle_collector`: what start-up built lives as long as the process, so the
  collector's later passes leave it alone; and a request makes few reference cycles, so it
  runs less often (docs/benchmarks.md, "The garbage collector after start-up").

The CLI imports this module first: asyncio, tempfile and threading load where they are used,
so a group's supervisor starts its workers before it loads asyncio.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from policyd.errors import FailedPrecondition

if TYPE_CHECKING:
    import logging

    from policyd.config import Config
    from policyd.telemetry.wiring import Instrumentation


def _log() -> logging.Logger:
    """This module's logger (``logging`` loads at first use: a group's supervisor imports this module
    before it starts its workers)."""
    import logging

    return logging.getLogger(__name__)


DEFAULT_TELEMETRY_FLUSH_S = 5.0
"""Default total limit of the telemetry flush at shutdown: with the chart's defaults (5 s preStop,
10 s drain) it ends 10 s before the 30 s termination grace."""


class DataDirError(FailedPrecondition):
    """The data directory cannot hold the cache and the ledger."""


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection inside (a block, or a decorated function); the collector's state is
    restored after, exception or not. For start-up only: nothing long-running belongs inside."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


COLLECTOR_THRESHOLDS = (10_000, 10, 10)
"""``gc.set_threshold`` once serving: the youngest generation is collected after 10,000 net
allocations of tracked objects instead of 700. Requests free almost everything they allocate by
reference counting, so the collector found little to free while it ran ~15 times every 1,000
requests; the older generations keep Python's defaults."""


def settle_collector() -> None:
    """Once start-up is done, before serving: move everything it built (~46,000 tracked objects:
    modules, plugins, config, stores) to the collector's permanent generation (``gc.freeze``), so
    no later pass walks it, and collect the young generation less often
    (:data:`COLLECTOR_THRESHOLDS`). In process, the collector's time per request went from
    ~14 µs to between 0.4 and 2 µs. Start-up's own garbage, if any, stays with what is frozen; it is not
    collected by the pass this would take (tens of ms on the way to SERVING)."""
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def _stores_on(config: Config) -> list[str]:
    """The policy file's sections that need the data directory: ``cache`` and ``ledger`` unless turned off."""
    raw = config.raw
    if raw is None:
        return ["cache", "ledger"]
    return [name for name, on in (("cache", raw.cache.enabled), ("ledger", raw.ledger.enabled)) if on]


def require_data_dir(data_dir: Path, config: Config) -> None:
    """Create ``data_dir`` (mode 0700) and prove it writable, or raise :class:`DataDirError`.

    With ``cache.enabled: false`` and ``ledger.enabled: false`` in the policy file nothing
    lives there, and an unusable directory is only logged.
    """
    import tempfile

    needed = _stores_on(config)
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir, prefix=".policyd-write-check-"):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc)
        if not needed:
            _log().info("data directory %s is not usable (%s); cache and ledger are off", data_dir, why)
            return
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "this user"
        raise DataDirError(
            f"data directory {data_dir} is not writable by {user} ({why}); "
            f"the {' and the '.join(needed)} {'live' if len(needed) > 1 else 'lives'} there. "
            "Fix: mount a volume there that this user can write (Kubernetes: an emptyDir or a claim with "
            "fsGroup; podman/docker: --tmpfs or -v with the right owner), or point POLICYD_DATA_DIR "
            "(--data-dir) at a writable directory, or turn both off in the policy file "
            "(cache: {enabled: false} and ledger: {enabled: false})"
        ) from None


def telemetry_flush_limit() -> float:
    """``POLICYD_TELEMETRY_FLUSH_S`` (seconds, >= 0), else :data:`DEFAULT_TELEMETRY_FLUSH_S`."""
    text = os.environ.get("POLICYD_TELEMETRY_FLUSH_S", "")
    if not text:
        return DEFAULT_TELEMETRY_FLUSH_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise FailedPrecondition(f"POLICYD_TELEMETRY_FLUSH_S: expected seconds >= 0, got {text!r}")
    return value


def bounded_close(instr: Instrumentation, limit_s: float | None = None) -> Callable[[], Awaitable[None]]:
    """A closer that flushes the decision log and the exporters within ``limit_s`` seconds in total.

    The flush runs in a daemon thread, so one stuck on a collector that is down neither
    blocks the event loop nor keeps the process alive; past the limit the daemon logs
    what is dropped and goes on exiting (the SDK's own exit handlers are unregistered, so
    they do not start the same retries again).
    """
    limit = telemetry_flush_limit() if limit_s is None else limit_s

    def flush() -> None:
        if instr.decisions is not None:
            instr.decisions.close()
        instr.telemetry.shutdown_sync()

    async def close() -> None:
        if not instr.telemetry.enabled and instr.decisions is None:
            return
        import asyncio
        import threading

        done = asyncio.get_running_loop().create_future()

        def settle() -> None:
            if not done.done():
                done.set_result(None)

        def run() -> None:
            try:
                flush()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed: the daemon gave up waiting
                    done.get_loop().call_soon_threadsafe(settle)

        threading.Thread(target=run, name="policyd-telemetry-flush", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout=limit)
        except TimeoutError:
            for step in instr.telemetry.flushers:
                atexit.unregister(step)
            _log().warning(
                "telemetry flush did not finish within %.1f s (POLICYD_TELEMETRY_FLUSH_S): is the collector "
                "down? spans, metric points and decision events still buffered are dropped",
                limit,
            )

    return close
