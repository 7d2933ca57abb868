"""Hot reload: on SIGHUP or a change of the policy file, validate it in full and swap it in.

The new file goes through the same loader as at start-up (schema, plugins' parameters,
models, validators, auth and limits) and its providers are built before anything
changes; only then does the engine swap its runtime, in one assignment. Requests that
started on the old runtime finish on it; its providers close when the last of them
is done. A rejected file changes nothing: the error is logged, shown by GetStats'
``config_error`` and by the ``policyd.config`` health entry (NOT_SERVING), and the old
policy keeps serving.

Message sizes, the concurrency cap, the listen address and TLS are fixed when the
server starts: a reload that changes them says so in the log and needs a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from policyd.config import Config, load
from policyd.daemon import Daemon
from policyd.errors import PolicydError
from policyd.telemetry import semconv as sc

log = logging.getLogger(__name__)

CONFIG_HEALTH = "policyd.config"
"""Health entry: SERVING while the file on disk is the one in force, NOT_SERVING after a rejected reload."""

Stamp = tuple[int, int, int] | None


def file_stamp(path: str) -> Stamp:
    """What changes when the file is edited or replaced (a Kubernetes ConfigMap swaps a symlink)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """Keys whose new values take effect only after a restart."""
    changed = []
    for key in ("max_receive_message_bytes", "max_send_message_bytes", "max_concurrent_rpcs"):
        if getattr(old.raw.limits, key) != getattr(new.raw.limits, key):
            changed.append(f"limits.{key}")
    old_tls = old.raw.auth.tls if old.raw.auth else None
    new_tls = new.raw.auth.tls if new.raw.auth else None
    if old_tls != new_tls:
        changed.append("auth.tls")
    return changed


class Reloader:
    def __init__(self, daemon: Daemon, health: health_aio.HealthServicer | None = None) -> None:
        self.daemon = daemon
        self.health = health
        self.path = daemon.options.config_path
        self.stamp = file_stamp(self.path) if self.path else None
        self.reloads = 0
        self.rejected = 0
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._counter = daemon.telemetry.meter().create_counter(
            sc.METRIC_CONFIG_RELOADS, unit="{reload}", description="Policy file reloads, applied or rejected."
        )

    async def start(self) -> None:
        await self._set_health(ok=True)

    async def reload(self, reason: str) -> bool:
        """Load the file again; True when the new policy is in force."""
        if self.path is None:
            log.info("%s: running the bundled default policy, nothing to reload", reason)
            return False
        async with self._lock:
            self.stamp = file_stamp(self.path)
            engine = self.daemon.engine
            try:
                config = await asyncio.to_thread(load, self.path, self.daemon.registered)
                old = engine.swap(config)
            except PolicydError as exc:
                return await self._reject(reason, str(exc))
            except Exception as exc:  # a plugin's factory bug must not take the daemon down
                log.exception("reload (%s) failed unexpectedly", reason)
                return await self._reject(reason, f"{self.path}: {type(exc).__name__} while loading (see the log)")
            self.reloads += 1
            self._counter.add(1, {sc.POLICYD_RELOAD_RESULT: "applied"})
            self.daemon.config_error = None
            log.info("policy reloaded (%s): %s version %s -> %s", reason, self.path, old.config.version, config.version)
            for key in restart_only_changes(old.config, config):
                log.warning("reload: %s changed; it takes effect after a restart", key)
            task = asyncio.create_task(engine.retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            await self._set_health(ok=True)
            return True

    async def _reject(self, reason: str, error: str) -> bool:
        self.rejected += 1
        self._counter.add(1, {sc.POLICYD_RELOAD_RESULT: "rejected"})
        self.daemon.config_error = error
        log.error("reload (%s) rejected, still serving version %s: %s", reason, self.daemon.config.version, error)
        await self._set_health(ok=False)
        return False

    async def watch(self, interval_s: float) -> None:
        """Poll the file and reload when it changes; runs until cancelled."""
        if self.path is None or interval_s <= 0:
            return
        while True:
            await asyncio.sleep(interval_s)
            if file_stamp(self.path) != self.stamp:
                await self.reload("file changed")

    async def _set_health(self, *, ok: bool) -> None:
        if self.health is not None:
            status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            await self.health.set(CONFIG_HEALTH, status)

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Let retired runtimes close their providers (their requests are done by now)."""
        if self._retiring:
            await asyncio.wait(set(self._retiring), timeout=timeout_s)
