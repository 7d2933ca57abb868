"""The test tiers (after OPA's): which tests start processes, declared in one place.

* fast tier (``make test-fast``, ``pytest -m "not process"``): unit tests and in-process tests
  (a real grpc.aio server on 127.0.0.1:0 inside the test process, real HTTP fakes, real caches);
* process tier (``make test-slow``, ``pytest -m process``): tests that start ``policyd serve``
  or another program as a separate process (kill -9, SIGTERM/SIGHUP, the CLI's exit codes,
  the image's health check, helm, the benchmark harness), and the eval checks that replay the
  whole shared research data (about a minute of CPU). The clients' live tests and the
  template plugin's (``make clients``, ``make plugin-template``) belong to it too.

``tests/conftest.py`` marks each collected test ``process`` when its folder, file or node id
is listed below; a listed entry that matches nothing in a collected file fails the run, so a
renamed test cannot drop out of its tier unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

PROCESS_FOLDERS = ("bench", "docker", "fleet", "helm")
"""Folders under tests/ whose every test is in the process tier."""

PROCESS_TESTS = (
    "cache/test_cache_process.py",
    "cli/test_bad_input.py::test_serve_on_a_busy_port_exits_2_with_one_line",
    "cli/test_cli.py::test_serve_runs_the_offline_default_and_the_example_calls_it",
    "cli/test_health_cmd.py",
    "faults/test_auth.py::test_hash_token_reads_stdin_and_generates",
    "faults/test_canaries.py::test_a_prompt_echoed_by_an_upstream_error_is_absent_from_telemetry_without_capture",
    "faults/test_canaries.py::test_canary_key_and_bearer_tokens_are_absent_from_logs_spans_and_errors",
    "faults/test_drain.py",
    "faults/test_malformed.py::test_invalid_utf8_in_a_string_field_is_invalid_argument",
    "faults/test_reload.py::test_sighup_and_a_file_change_reload_a_running_process",
    "faults/test_transport.py::test_unix_socket_listening_serves_and_the_socket_is_owner_and_group_only",
    "eval/test_shared_data.py",
    "ledger/test_durability.py",
    "telemetry/test_otlp_e2e.py",
    "telemetry/test_shutdown_bound.py",
    "telemetry/test_prometheus.py::test_serve_exits_with_the_error_when_the_port_is_taken",
    "server/openai/test_openai_readme.py",
    "server/test_workers.py",
    "test_packaging.py",
)
"""Files (``folder/test_x.py``) or tests (``folder/test_x.py::name``, parameters included) in the process tier."""


def in_process_tier(relpath: str, name: str) -> str | None:
    """The entry that puts the test ``relpath::name`` (relative to tests/) in the process tier, if any."""
    if relpath.split("/", 1)[0] in PROCESS_FOLDERS:
        return relpath.split("/", 1)[0]
    base = name.split("[", 1)[0]
    for entry in PROCESS_TESTS:
        if entry in (relpath, f"{relpath}::{name}", f"{relpath}::{base}"):
            return entry
    return None


def mark(items: Iterable[pytest.Item], tests_root: str) -> None:
    """Add the ``process`` marker to the items the lists above name; fail on an entry naming nothing."""
    used: set[str] = set()
    collected_files: set[str] = set()
    for item in items:
        relpath = item.path.relative_to(tests_root).as_posix() if item.path.is_relative_to(tests_root) else ""
        collected_files.add(relpath)
        entry = in_process_tier(relpath, item.name)
        if entry is not None:
            used.add(entry)
            item.add_marker(pytest.mark.process)
    stale = [e for e in PROCESS_TESTS if e.split("::", 1)[0] in collected_files and e not in used]
    if stale:
        raise pytest.UsageError(f"tests/tiers.py names tests that do not exist: {', '.join(stale)}")
