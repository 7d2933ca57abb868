"""The distribution: policyd and its built-in plugins under two top-level packages, nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from policyd.plugin.manager import BUILTIN_PLUGINS

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_and_sdist_hold_policyd_and_its_builtins_only(tmp_path: Path):
    # python -m build: the sdist first, then the wheel built from that sdist (as make dist does),
    # here with the venv's setuptools instead of a fresh one from PyPI.
    had_build_dir = (ROOT / "build").exists()
    command = [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check", "--outdir", str(tmp_path)]
    result = subprocess.run([*command, str(ROOT)], capture_output=True, text=True, check=False, cwd=tmp_path)
    if not had_build_dir:
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (wheel,) = tmp_path.glob("policyd-*.whl")
    (sdist,) = tmp_path.glob("policyd-*.tar.gz")

    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"policyd", "policyd_plugins"}
    for module in BUILTIN_PLUGINS.values():
        assert f"{module.replace('.', '/')}/__init__.py" in names, module
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/") or "hedge" in n]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "policyd = policyd.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    members = tarfile.open(sdist).getnames()
    root = members[0].split("/", 1)[0]
    assert f"{root}/plugins/policyd_plugins/simulated/__init__.py" in members
    assert not [m for m in members if m.startswith((f"{root}/tests/", f"{root}/plugins/policyd-hedge"))]
