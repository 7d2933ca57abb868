"""How many workers ``policyd serve`` runs: ``--workers`` / ``POLICYD_WORKERS``, else the cores it may use."""

from __future__ import annotations

import math
import os
from pathlib import Path

from policyd.errors import InvalidArgument

ENV = "POLICYD_WORKERS"
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
MAX_WORKERS = 256


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpus(
    v2: Path = CGROUP_V2_CPU_MAX, v1_quota: Path = CGROUP_V1_QUOTA, v1_period: Path = CGROUP_V1_PERIOD
) -> int | None:
    """The CPU quota of this process's cgroup rounded up to whole cores, or None when there is none.

    cgroup v2: ``cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``; v1: ``cpu.cfs_quota_us``
    (-1: none) over ``cpu.cfs_period_us``. A Kubernetes CPU limit of ``1500m`` gives 2."""
    text = _read(v2)
    if text is not None:
        quota, _, period = text.partition(" ")
    else:
        quota, period = _read(v1_quota) or "", _read(v1_period) or ""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None  # "max", missing or unreadable: no quota
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def available_cpus() -> int:
    """The cores this process may run on (its affinity mask), capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpus()
    return max(1, min(cores, quota) if quota is not None else cores)


def parse_workers(text: str, source: str = "--workers") -> int:
    """A worker count from the flag or the environment: an integer from 1 to 256."""
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidArgument(
            source, f"expected a whole number of worker processes from 1 to {MAX_WORKERS}, got {text!r}"
        ) from None
    if not 1 <= value <= MAX_WORKERS:
        raise InvalidArgument(
            source, f"expected a whole number of worker processes from 1 to {MAX_WORKERS}, got {value}"
        )
    return value


def requested_workers(flag: str | None, environ: dict[str, str] | os._Environ[str] = os.environ) -> int | None:
    """``--workers`` (wins), else ``$POLICYD_WORKERS``; None when neither is set (the default applies)."""
    if flag is not None:
        return parse_workers(flag, "--workers")
    text = environ.get(ENV, "").strip()
    return parse_workers(text, f"--workers (from ${ENV})") if text else None
