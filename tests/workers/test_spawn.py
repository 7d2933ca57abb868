"""Forked workers (:mod:`policyd.workers.spawn`): waited for and signalled as a ``Popen`` would be.

The group's real forks are exercised by ``tests/server/test_workers.py`` (a supervisor and its two
workers); here one plain child stands in for a worker.
"""

from __future__ import annotations

import os
import signal
import time

from policyd.workers.spawn import Forked


def child(code: int, sleep_s: float = 0.0) -> Forked:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        time.sleep(sleep_s)
        os._exit(code)
    return Forked(pid)


def test_a_forked_childs_exit_code_is_waited_for_once():
    proc = child(3)
    assert proc.returncode is None
    assert proc.wait() == 3 and proc.returncode == 3
    assert proc.wait() == 3  # reaped already: the code is remembered, not waited for again


def test_a_signal_ends_it_with_minus_the_signal_and_none_is_sent_once_it_is_reaped():
    proc = child(0, sleep_s=30)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == -signal.SIGTERM
    proc.kill()  # its pid may be another process's by now: nothing is sent
    assert proc.returncode == -signal.SIGTERM
