"""The supervisor of ``policyd serve --workers N``: one address, N serving processes, one daemon's behaviour.

It holds the listening ports (:mod:`.ports`), adopts the workers :mod:`.spawn` started before
its event loop (each ``python -m policyd serve`` with one end of a Unix socket pair), hosts the
group's shared state (:mod:`.state`) and prints the address once every worker serves. SIGHUP is
forwarded to every worker; SIGTERM or SIGINT turns every worker NOT_SERVING at once, then drains
them all within the grace, and it exits 0. A worker that exits on its own is restarted, after a
backoff that doubles while it keeps failing fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from policyd.workers.metrics import GroupMetrics
from policyd.workers.peer import Message, Peer
from policyd.workers.plan import Plan
from policyd.workers.spawn import Child, start_worker
from policyd.workers.state import GroupState

__all__ = ["Plan", "Supervisor", "Worker", "supervise"]

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 10.0
"""A worker that served this long before exiting is restarted at once (its backoff starts again)."""
EXIT_MARGIN_S = 10.0
"""Past the grace, what a worker gets to close its stores (telemetry flush limit 5 s by default) before SIGKILL."""


@dataclass
class Worker:
    index: int
    proc: Child | None = None
    peer: Peer | None = None
    started: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    info: Message = field(default_factory=dict)
    failures: int = 0
    incarnation: int = 0
    """Which start of this worker: the shared state's key (a dead one's late message spares its successor)."""


class Supervisor:
    def __init__(self, plan: Plan, started: Sequence[Child] = ()) -> None:
        self.plan = plan
        self.prestarted = list(started)
        """Workers :func:`.spawn.start_group` started before this loop ran, adopted in order."""
        self.state = GroupState()
        self.workers = [Worker(i) for i in range(plan.workers)]
        self.draining = False
        self.serving = False
        self._incarnations = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.stop = asyncio.Event()
        self.failed: int | None = None
        """The exit code of a worker that could not start (the group gives up)."""
        self.metrics = GroupMetrics(plan.metrics, self.metric_ports) if plan.metrics is not None else None

    def metric_ports(self) -> dict[int, int]:
        """Each serving worker's own loopback ``/metrics`` port."""
        return {w.index: int(w.info["metrics_port"]) for w in self.workers if w.info.get("metrics_port")}

    async def spawn(self, worker: Worker) -> None:
        """Adopt the worker started for this slot before the loop ran, else start one now (a restart)."""
        worker.proc = self.prestarted.pop(0) if self.prestarted else start_worker(self.plan, worker.index)
        worker.started = time.monotonic()
        worker.ready.clear()
        worker.info = {}
        self._incarnations += 1
        worker.incarnation = self._incarnations
        worker.peer = await Peer.open(worker.proc.sock, self._handler(worker))
        self.state.attach(worker.incarnation, worker.peer)
        reader = asyncio.get_running_loop().create_task(worker.peer.run())
        self._tasks.add(reader)  # held until it ends (the loop keeps only weak references)
        reader.add_done_callback(self._tasks.discard)
        log.info("worker %d started (pid %d)", worker.index, worker.proc.pid)

    def _handler(self, worker: Worker) -> Any:
        shared = self.state.handler(worker.incarnation)

        def handle(op: str, msg: Message) -> Any:
            if op == "ready":
                worker.info = msg
                worker.ready.set()
                # SERVING at once: the kernel hands connections only to workers that listen, so the
                # address serves from its first ready worker (the group's start is as fast as one
                # daemon's); the "listening" line still waits for every worker.
                if not self.draining and worker.peer is not None:
                    worker.peer.notify("serving", serving=True)
                if self.serving:
                    log.info("worker %d rejoined the group (pid %s)", worker.index, msg.get("pid"))
                return None
            return shared(op, msg)

        return handle

    async def watch(self, worker: Worker) -> None:
        """Restart ``worker`` whenever it exits, until the group drains."""
        while True:
            assert worker.proc is not None
            code = await worker.proc.wait()
            self.state.detach(worker.incarnation)
            if self.draining:
                return
            if not self.serving:  # it never served: the group cannot start (its error is on stderr)
                log.error("worker %d exited with %s before the group served", worker.index, _status(code))
                self.failed = code if code > 0 else 1
                self.stop.set()
                return
            ran = time.monotonic() - worker.started
            worker.failures = 0 if ran >= HEALTHY_AFTER_S else worker.failures + 1
            delay = 0.0 if worker.failures == 0 else min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (worker.failures - 1))
            log.warning(
                "worker %d (pid %d) exited with %s after %.1f s; restarting it in %.1f s",
                worker.index,
                worker.proc.pid,
                _status(code),
                ran,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
            if self.draining or self.stop.is_set():
                return
            await self.spawn(worker)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.forward_sighup)
        if self.metrics is not None:
            self.metrics.start()  # a port in use stops the start before any worker runs
        for worker in self.workers:
            await self.spawn(worker)
        watchers = [loop.create_task(self.watch(w)) for w in self.workers]
        all_ready = loop.create_task(asyncio.wait([loop.create_task(w.ready.wait()) for w in self.workers]))
        stopping = loop.create_task(self.stop.wait())
        await asyncio.wait([all_ready, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not self.stop.is_set():
            self.announce()
            await self.stop.wait()
        all_ready.cancel()
        await self.drain()
        for task in watchers:
            task.cancel()
        self.plan.grpc.close()
        if self.metrics is not None:
            self.metrics.stop()
        if self.plan.http is not None:
            self.plan.http.close()
        return self.failed if self.failed is not None else 0

    def announce(self) -> None:
        self.serving = True
        for worker in self.workers:
            if worker.peer is not None:
                with contextlib.suppress(ConnectionError):
                    worker.peer.notify("serving", serving=True)
        info = self.workers[0].info
        print(
            f"policyd listening on {self.plan.grpc.listen} "
            f"(policy {info.get('policy')}, version {info.get('version')}, {len(self.workers)} workers)",
            flush=True,
        )
        if self.plan.http is not None:
            print(f"policyd OpenAI-compatible HTTP on {self.plan.http.listen}", flush=True)
        pids = ", ".join(str(w.proc.pid) for w in self.workers if w.proc is not None)
        log.info("%d workers serving on %s (pids %s)", len(self.workers), self.plan.grpc.listen, pids)

    def forward_sighup(self) -> None:
        log.info("SIGHUP: reloading the policy in every worker")
        self._signal(signal.SIGHUP)

    def _signal(self, sig: int) -> None:
        for worker in self.workers:
            if worker.proc is not None and worker.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(sig)

    async def drain(self) -> None:
        """Every worker NOT_SERVING at once, then SIGTERM: each drains within the grace; SIGKILL past it."""
        self.draining = True
        log.info("shutting down: draining %d workers for up to %.1f s", len(self.workers), self.plan.grace_s)
        for worker in self.workers:
            if worker.peer is not None:
                with contextlib.suppress(ConnectionError):
                    worker.peer.notify("serving", serving=False)
        self._signal(signal.SIGTERM)
        procs = [w.proc for w in self.workers if w.proc is not None]
        waits = [asyncio.ensure_future(p.wait()) for p in procs]
        if not waits:
            return
        _, late = await asyncio.wait(waits, timeout=self.plan.grace_s + EXIT_MARGIN_S)
        for proc in procs:
            if proc.returncode is None:
                log.error("worker pid %d did not stop within the grace: killed", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        if late:
            await asyncio.wait(late)
        log.info("stopped")


def _status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


def supervise(plan: Plan, started: Sequence[Child] = ()) -> int:
    """Run the group until SIGTERM; ``started``: its workers, already running (:func:`.spawn.start_group`)."""
    return asyncio.run(Supervisor(plan, started).run())
