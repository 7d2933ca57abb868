"""Pinned code-generation and proto tools, installed on first use from the package registries.

Every tool lands in its own versioned folder under ``$POLICYD_TOOLS_DIR`` (default
``~/.cache/policyd-tools``), so installing is idempotent, survives fresh clones (CI) and a
version bump installs beside the old one instead of over it:

- Go tools (protoc-gen-go, protoc-gen-go-grpc, buf) with ``go install module@version``
  from the Go module proxy; the module and build caches make a reinstall cheap.

Python's protoc is the one bundled in the pinned ``grpcio-tools`` (pyproject's dev extra).
Java's protoc and protoc-gen-grpc-java are the Maven build's (``clients/java/pom.xml``), at the
same protoc version (``tests/test_generated_pins.py`` checks it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTOC_GEN_GO = ("google.golang.org/protobuf/cmd/protoc-gen-go", "v1.36.12")
PROTOC_GEN_GO_GRPC = ("google.golang.org/grpc/cmd/protoc-gen-go-grpc", "v1.6.2")
BUF = ("github.com/bufbuild/buf/cmd/buf", "v1.75.0")


def tools_dir() -> Path:
    return Path(os.environ.get("POLICYD_TOOLS_DIR") or Path.home() / ".cache" / "policyd-tools")


def _need(command: str) -> str:
    path = shutil.which(command)
    if path is None:
        raise SystemExit(f"scripts/tools.py: '{command}' is not on PATH (needed to install the code generators)")
    return path


def _run(args: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"scripts/tools.py: failed: {' '.join(args)}")


def go_tool(module: str, version: str) -> Path:
    """``go install module@version`` into its own folder, once; returns the executable."""
    name = module.rsplit("/", 1)[-1]
    exe = tools_dir() / f"{name}-{version}" / name
    if exe.exists():
        return exe
    go = _need("go")
    print(f"installing {name} {version} (go install)", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=_parent(exe)) as tmp:
        _run([go, "install", f"{module}@{version}"], env={**os.environ, "GOBIN": tmp, "GOFLAGS": "-buildvcs=false"})
        _publish(Path(tmp) / name, exe)
    return exe


def _parent(exe: Path) -> Path:
    exe.parent.parent.mkdir(parents=True, exist_ok=True)
    return exe.parent.parent


def _publish(built: Path, exe: Path) -> None:
    """Move a finished download into place atomically, so a half-installed tool is never used."""
    exe.parent.mkdir(parents=True, exist_ok=True)
    os.replace(built, exe)
