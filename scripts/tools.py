"""Pinned code-generation and proto tools, installed on first use from the package registries.

Every tool lands in its own versioned folder under ``$POLICYD_TOOLS_DIR`` (default
``~/.cache/policyd-tools``), so installing is idempotent, survives fresh clones (CI) and a
version bump installs beside the old one instead of over it:

- Go tools (protoc-gen-go, protoc-gen-go-grpc, buf) with ``go install module@version``
  from the Go module proxy; the module and build caches make a reinstall cheap.
- Java's protoc and protoc-gen-grpc-java as executables from Maven Central, through
  ``mvn dependency:copy`` (so ``~/.m2`` caches them too).

Python's protoc is the one bundled in the pinned ``grpcio-tools`` (pyproject's dev extra);
Java's protoc is taken at that same protoc version so every language is generated alike.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTOC_GEN_GO = ("google.golang.org/protobuf/cmd/protoc-gen-go", "v1.36.12")
PROTOC_GEN_GO_GRPC = ("google.golang.org/grpc/cmd/protoc-gen-go-grpc", "v1.6.2")
BUF = ("github.com/bufbuild/buf/cmd/buf", "v1.75.0")
# Keep in step with grpc.version in clients/java/pom.xml.
PROTOC_GEN_GRPC_JAVA = ("io.grpc", "protoc-gen-grpc-java", "1.83.1")
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


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


def maven_classifier() -> str:
    """The classifier under which protobuf and grpc-java publish executables for this machine."""
    system = {"Linux": "linux", "Darwin": "osx", "Windows": "windows"}.get(platform.system())
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch_64", "arm64": "aarch_64"}.get(
        platform.machine().lower()
    )
    if system is None or arch is None:
        machine = f"{platform.system()} {platform.machine()}"
        raise SystemExit(f"scripts/tools.py: protoc and protoc-gen-grpc-java publish no executable for {machine}")
    return f"{system}-{arch}"


def maven_exe(group: str, artifact: str, version: str) -> Path:
    """An ``exe`` artifact from Maven Central, fetched once with ``mvn dependency:copy``."""
    exe = tools_dir() / f"{artifact}-{version}" / artifact
    if exe.exists():
        return exe
    mvn = _need("mvn")
    coordinates = f"{group}:{artifact}:{version}:exe:{maven_classifier()}"
    print(f"installing {coordinates} (mvn dependency:copy)", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=_parent(exe)) as tmp:
        copy = f"{MAVEN_DEPENDENCY_PLUGIN}:copy"
        _run([mvn, "-B", "-q", copy, f"-Dartifact={coordinates}", f"-DoutputDirectory={tmp}"])
        (fetched,) = Path(tmp).glob(f"{artifact}-*")
        fetched.chmod(0o755)
        _publish(fetched, exe)
    return exe


def java_protoc(protoc_version: str) -> Path:
    """protoc ``X.Y`` as published by protobuf for Java (``com.google.protobuf:protoc:4.X.Y``)."""
    return maven_exe("com.google.protobuf", "protoc", f"4.{protoc_version}")


def _parent(exe: Path) -> Path:
    exe.parent.parent.mkdir(parents=True, exist_ok=True)
    return exe.parent.parent


def _publish(built: Path, exe: Path) -> None:
    """Move a finished download into place atomically, so a half-installed tool is never used."""
    exe.parent.mkdir(parents=True, exist_ok=True)
    os.replace(built, exe)
