"""The process tier is declared in tests/tiers.py and applied to what pytest collects."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import tiers


def test_a_listed_test_its_parameters_and_listed_folders_are_in_the_process_tier():
    assert tiers.in_process_tier("ledger/test_durability.py", "test_kill_9_under_load_loses_nothing_acknowledged[sync]")
    assert tiers.in_process_tier("cli/test_cli.py", "test_serve_runs_the_offline_default_and_the_example_calls_it") == (
        "cli/test_cli.py::test_serve_runs_the_offline_default_and_the_example_calls_it"
    )
    assert tiers.in_process_tier("helm/test_chart.py", "test_anything") == "helm"


def test_other_tests_in_a_mixed_file_stay_in_the_fast_tier():
    assert tiers.in_process_tier("cli/test_cli.py", "test_plugins_lists_builtins") is None
    assert tiers.in_process_tier("engine/test_engine.py", "test_x") is None


class _Item(SimpleNamespace):
    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.markers.append(marker.name)


def _item(root: Path, relpath: str, name: str) -> _Item:
    return _Item(path=root / relpath, name=name, markers=[])


def test_mark_marks_listed_tests_and_refuses_an_entry_naming_no_test(tmp_path: Path):
    process = _item(tmp_path, "faults/test_drain.py", "test_anything")
    fast = _item(tmp_path, "faults/test_limits.py", "test_oversized_request_is_refused")
    tiers.mark([process, fast], str(tmp_path))  # type: ignore[list-item]
    assert process.markers == ["process"] and fast.markers == []

    renamed = _item(tmp_path, "faults/test_reload.py", "test_sighup_reloads_renamed")
    with pytest.raises(pytest.UsageError, match=r"faults/test_reload\.py::test_sighup_and_a_file_change"):
        tiers.mark([renamed], str(tmp_path))  # type: ignore[list-item]
