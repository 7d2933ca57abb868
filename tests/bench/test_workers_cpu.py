"""The workers bench's accounting: which worker holds a connection, and the per-process medians."""

from __future__ import annotations

import os
import socket

from bench.workers_bench import _process_medians, ceiling
from bench.workers_cpu import peer_ports, roles, snapshot


def test_a_connection_is_found_in_the_process_that_accepted_it_by_the_clients_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            found = peer_ports(os.getpid(), port)
            assert found == {c.getsockname()[1] for c in clients}
            assert peer_ports(os.getpid(), port + 1 if port < 65535 else port - 1) == set()
        finally:
            for s in clients + accepted:
                s.close()


def test_one_daemon_is_its_own_only_worker_and_its_event_loop_is_its_main_thread():
    pids = roles(os.getpid(), 1)
    assert pids == {"worker0": os.getpid()}
    sum(range(200_000))  # some CPU in this (main) thread
    ticks = snapshot(pids)
    assert set(ticks) == {"worker0", "worker0.loop"}
    assert 0 <= ticks["worker0.loop"] <= ticks["worker0"]


def test_process_medians_add_every_worker_and_leave_the_event_loops_out_of_the_total():
    def run(w0: float, w1: float, lg: float) -> dict[str, dict[str, float]]:
        cpu = {"supervisor": 1.0, "worker0": w0, "worker1": w1, "worker0.loop": w0 / 2, "worker1.loop": w1 / 2}
        return {"cpu_us_per_req": {**cpu, "upstream": 40.0, "loadgen": lg}}

    medians = _process_medians([run(400, 500, 100), run(300, 300, 120), run(500, 600, 90)])
    assert medians == {
        "supervisor": 1.0,
        "workers": 900.0,
        "loops": 450.0,
        "upstream": 40.0,
        "loadgen": 100.0,
        "all": 1041.0,
    }


def test_the_ceiling_binds_one_worker_by_its_event_loop_and_two_by_all_the_cpu_per_request():
    processes = {1: {"loops": 500.0, "all": 800.0}, 2: {"loops": 550.0, "all": 800.0}}
    assert ceiling(processes, 2) == {"rps_1": 2000, "rps_2": 2500, "ratio": 1.25}
    one_bound_by_cores = {1: {"loops": 500.0, "all": 1600.0}, 2: {"loops": 500.0, "all": 1600.0}}
    assert ceiling(one_bound_by_cores, 2) == {"rps_1": 1250, "rps_2": 1250, "ratio": 1.0}
