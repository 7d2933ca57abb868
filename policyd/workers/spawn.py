"""Starting a worker: ``python -m policyd serve`` with one end of a Unix socket pair.

A plain :class:`subprocess.Popen`, so the supervisor starts its workers before it has an event
loop (or has even imported asyncio): they import in parallel while it sets itself up
(docs/deploy.md, "Start-up"). A restarted worker is started the same way from the running loop.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from policyd.workers.env import FD_ENV, INDEX_ENV, PARENT_ENV
from policyd.workers.metrics import WORKER_ENV

if TYPE_CHECKING:
    import asyncio

    from policyd.workers.plan import Plan


class Child:
    """A started worker and the supervisor's end of its socket pair."""

    def __init__(self, popen: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.popen = popen
        self.sock = sock
        self._exit: asyncio.Future[int] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """None while it runs; its exit code, or minus the signal that ended it."""
        return self.popen.returncode

    def send_signal(self, sig: int) -> None:
        self.popen.send_signal(sig)  # nothing once it has been reaped

    def kill(self) -> None:
        self.popen.kill()

    async def wait(self) -> int:
        """Its exit status once it exits. A thread waits for it, as asyncio's own child watcher does."""
        import asyncio

        if self._exit is None:
            loop = asyncio.get_running_loop()
            self._exit = loop.create_future()
            threading.Thread(target=self._reap, args=(loop, self._exit), name=f"reap-{self.pid}", daemon=True).start()
        return await asyncio.shield(self._exit)

    def _reap(self, loop: asyncio.AbstractEventLoop, exited: asyncio.Future[int]) -> None:
        code = self.popen.wait()
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, exited, code)


def _settle(exited: asyncio.Future[int], code: int) -> None:
    if not exited.done():
        exited.set_result(code)


def start_worker(plan: Plan, index: int) -> Child:
    """Start worker ``index`` of ``plan``; it inherits its end of the pair (``POLICYD_GROUP_FD``)."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = {**os.environ, FD_ENV: str(child.fileno()), INDEX_ENV: str(index), PARENT_ENV: str(os.getpid())}
    if plan.metrics is not None:
        env.update(WORKER_ENV)  # each its own loopback endpoint; the supervisor serves the configured one
    try:
        popen = subprocess.Popen(
            plan.command(),
            env=env,
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),  # the supervisor's stdout carries only its own lines
        )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    return Child(popen, parent)


def start_group(plan: Plan) -> list[Child]:
    """Every worker of ``plan``, started now, before the supervisor's event loop. None when the group
    serves Prometheus metrics: the supervisor takes that port first, so a port in use stops the start
    before any worker runs."""
    if plan.metrics is not None:
        return []
    return [start_worker(plan, index) for index in range(plan.workers)]
