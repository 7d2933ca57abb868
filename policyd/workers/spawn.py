"""Starting a worker: a fork of the supervisor at the group's start, ``python -m policyd serve`` after.

The group's first workers are forks of the supervisor, made before it has an event loop or a
thread, once it has held the address and imported the serve path (``policyd.cli.serve_cmd.
load_serve_path``, when :func:`forks_workers`): each child runs ``policyd serve`` with its
worker arguments as an exec'd worker would, without paying for a new interpreter, its
``site`` or the serve path's imports again, so it only builds its daemon; then the supervisor
starts its loop and its own state (docs/deploy.md, "Start-up"). A worker restarted
later, from the running loop, is a plain :class:`subprocess.Popen` of ``python -m policyd
serve`` (as the first ones are where there is no ``os.fork``, or when the group serves
Prometheus metrics). Either way it gets one end of a Unix socket pair (``POLICYD_GROUP_FD``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, Protocol

from policyd.workers.env import FD_ENV, INDEX_ENV, PARENT_ENV
from policyd.workers.metrics import WORKER_ENV

if TYPE_CHECKING:
    import asyncio

    from policyd.workers.plan import Plan


class Process(Protocol):
    """What the supervisor uses of a started worker's process (a :class:`subprocess.Popen` or a :class:`Forked`)."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def wait(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class Forked:
    """A worker forked by :func:`fork_worker`, waited for and signalled as a ``Popen`` would be."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        """None while it runs; its exit code, or minus the signal that ended it."""
        self._lock = threading.Lock()

    def wait(self) -> int:
        with self._lock:
            if self.returncode is None:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # never a pid the kernel may have given another process
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Child:
    """A started worker and the supervisor's end of its socket pair."""

    def __init__(self, popen: Process, sock: socket.socket) -> None:
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


def fork_worker(plan: Plan, index: int, others: Sequence[Child] = ()) -> Child:
    """Worker ``index`` of ``plan`` as a fork of this process, which must have no thread, no event loop and
    no grpc object (the supervisor before its own start; what it imported is shared). ``others``: the
    workers forked before it, whose ends of their pairs the child closes."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    supervisor = os.getpid()
    for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
        stream.flush()
    try:
        pid = os.fork()
    except BaseException:
        parent.close()
        child.close()
        raise
    if pid == 0:
        parent.close()
        _serve_as_worker(plan, index, child, supervisor, others)
    child.close()
    return Child(Forked(pid), parent)


def _serve_as_worker(plan: Plan, index: int, sock: socket.socket, supervisor: int, others: Sequence[Child]) -> NoReturn:
    """In a forked child: become worker ``index`` (``policyd serve`` with the worker arguments, as exec'd
    workers run it) and exit with its status. The exit unwinds the supervisor's frames the fork copied,
    none of which catches ``SystemExit``: the interpreter ends as an exec'd worker's does (its threads
    joined, its ``atexit`` functions run)."""
    code: int = 1
    try:
        for other in others:
            other.sock.close()
        for held in (plan.grpc, plan.http):
            if held is not None:
                held.close()  # the supervisor's; the worker binds its own
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(sys.stderr.fileno(), 1)  # the supervisor's stdout carries only its own lines
        os.environ.update({FD_ENV: str(sock.detach()), INDEX_ENV: str(index), PARENT_ENV: str(supervisor)})
        from policyd.cli.main import main

        code = main(plan.worker_args())
    except SystemExit:
        raise
    except BaseException:
        import traceback

        traceback.print_exc()
    raise SystemExit(code)


def forks_workers(plan: Plan) -> bool:
    """Whether :func:`start_group` forks ``plan``'s workers (then the supervisor imports the serve path
    first, once for all of them): where the platform has ``os.fork`` and the group serves no Prometheus
    metrics."""
    return plan.metrics is None and hasattr(os, "fork")


def start_group(plan: Plan) -> list[Child]:
    """Every worker of ``plan``, started now, before the supervisor's event loop: forks where the platform
    has them. None when the group serves Prometheus metrics: the supervisor takes that port first, so a
    port in use stops the start before any worker runs."""
    if plan.metrics is not None:
        return []
    started: list[Child] = []
    for index in range(plan.workers):
        started.append(fork_worker(plan, index, started) if forks_workers(plan) else start_worker(plan, index))
    return started
