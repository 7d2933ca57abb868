"""The default worker count: affinity under a cgroup CPU quota; the flag's and the variable's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyd.errors import InvalidArgument
from policyd.workers.count import cgroup_cpus, parse_workers, requested_workers


def test_a_cgroup_v2_quota_rounds_up_to_whole_cores_and_max_is_no_quota(tmp_path: Path):
    cpu_max = tmp_path / "cpu.max"
    missing = tmp_path / "none"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_cpus(cpu_max, missing, missing) == 2
    cpu_max.write_text("50000 100000\n")
    assert cgroup_cpus(cpu_max, missing, missing) == 1
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpus(cpu_max, missing, missing) is None


def test_a_cgroup_v1_quota_is_read_when_there_is_no_v2_file(tmp_path: Path):
    quota, period = tmp_path / "cpu.cfs_quota_us", tmp_path / "cpu.cfs_period_us"
    quota.write_text("300000\n")
    period.write_text("100000\n")
    assert cgroup_cpus(tmp_path / "none", quota, period) == 3
    quota.write_text("-1\n")
    assert cgroup_cpus(tmp_path / "none", quota, period) is None


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", "", "257"])
def test_a_bad_count_names_the_flag(text: str):
    with pytest.raises(InvalidArgument) as caught:
        parse_workers(text)
    assert caught.value.field == "--workers" and "from 1 to 256" in str(caught.value)


def test_the_flag_wins_over_the_variable_and_neither_means_the_default():
    assert requested_workers("3", {"POLICYD_WORKERS": "5"}) == 3
    assert requested_workers(None, {"POLICYD_WORKERS": " 5 "}) == 5
    assert requested_workers(None, {"POLICYD_WORKERS": ""}) is None
    with pytest.raises(InvalidArgument, match=r"POLICYD_WORKERS"):
        requested_workers(None, {"POLICYD_WORKERS": "many"})
