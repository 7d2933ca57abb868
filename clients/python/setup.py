"""Builds policyd-client; pyproject.toml holds the metadata. See stubs.py for the generated stubs."""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stubs


class BuildPyWithStubs(build_py):
    def run(self) -> None:
        super().run()
        stubs.write(Path(self.build_lib) / "policyd_client" / "v1")


class SdistWithStubs(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        stubs.write(Path(base_dir) / "src" / "policyd_client" / "v1")


setup(cmdclass={"build_py": BuildPyWithStubs, "sdist": SdistWithStubs})
