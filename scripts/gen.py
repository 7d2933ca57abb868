#!/usr/bin/env python3
"""Regenerates every generated artifact from its source of truth.

    python scripts/gen.py                  # write the generated files
    python scripts/gen.py --check          # fail (exit 1) when a committed file is stale
    python scripts/gen.py go java          # only these targets

Generated files are never edited by hand; CI runs ``--check``. Targets, all from ``protos/``:

- ``python``: the daemon's stubs, ``policyd/v1`` (protoc from grpcio-tools).
- ``python-client``: the same stubs for the client package, ``clients/python/src/policyd_client/v1``,
  with their one import rewritten so the client ships its own copy and needs no daemon.
- ``go``: ``clients/go/policydv1`` (protoc-gen-go and protoc-gen-go-grpc, ``go install``-ed).
- ``java``: ``clients/java/src/main/java/dev/policyd/v1`` (protoc and protoc-gen-grpc-java from
  Maven Central). They are committed like the others, so the Maven build needs no protoc plugin
  and ``--check`` covers them.

Each target owns a set of files: files it no longer produces are deleted (or reported by ``--check``).
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tools
from helm_schema import gen_helm_schema

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GO_MODULE_PREFIX = "github.com/policyd/policyd"  # go_package minus the repository-relative path
JAVA_SRC = Path("clients/java/src/main/java")
CLIENT_STUBS = Path("clients/python/src/policyd_client/v1")


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def grpc_tools_include() -> Path:
    """The well-known types bundled with grpcio-tools."""
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def protoc(args: list[str], what: str) -> None:
    """The pinned grpcio-tools protoc (in-process), with ``protos/`` and the well-known types."""
    from grpc_tools import protoc as grpc_protoc

    base = ["protoc", f"-I{PROTOS}", f"-I{grpc_tools_include()}"]
    if grpc_protoc.main([*base, *args, *proto_files()]) != 0:
        raise SystemExit(f"protoc failed for {what}")


def protoc_version() -> str:
    """``33.5`` for grpcio-tools' ``libprotoc 33.5``: Java's protoc is fetched at the same version."""
    out = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.fullmatch(r"libprotoc (\d+\.\d+)\s*", out)
    if match is None:
        raise SystemExit(f"cannot read grpcio-tools' protoc version from {out!r}")
    return match.group(1)


def files_under(out: Path, folder: Path | str, pattern: str) -> list[Path]:
    return sorted(p.relative_to(out) for p in (out / folder).glob(pattern))


def gen_python(out: Path) -> list[Path]:
    """``policyd/v1/policyd_pb2{,_grpc}.py`` and ``.pyi``, importable as ``policyd.v1``."""
    protoc([f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"], "Python")
    return files_under(out, "policyd/v1", "*_pb2*.py*")


def gen_python_client(out: Path) -> list[Path]:
    """The Python stubs again, as ``policyd_client.v1``: the client package must not need the daemon.

    Only the import of the messages module in ``*_pb2_grpc.py`` names the package; the
    serialized descriptor keeps its file name, so both copies can share one process.
    """
    with tempfile.TemporaryDirectory() as tmp:
        gen_python(Path(tmp))
        dest = out / CLIENT_STUBS
        dest.mkdir(parents=True)
        for src in Path(tmp, "policyd/v1").glob("*_pb2*.py*"):
            text = src.read_text(encoding="utf-8").replace("from policyd.v1 import", "from policyd_client.v1 import")
            if re.search(r"^\s*(from|import) policyd\.v1\b", text, re.MULTILINE):
                raise SystemExit(f"python-client: {src.name} still imports policyd.v1 (protoc's output changed)")
            (dest / src.name).write_text(text)
    return files_under(out, CLIENT_STUBS, "*_pb2*.py*")


def gen_go(out: Path) -> list[Path]:
    """``clients/go/policydv1/*.pb.go``, placed by the proto's ``go_package``."""
    go = tools.go_tool(*tools.PROTOC_GEN_GO)
    go_grpc = tools.go_tool(*tools.PROTOC_GEN_GO_GRPC)
    module = f"module={GO_MODULE_PREFIX}"
    protoc(
        [
            f"--plugin=protoc-gen-go={go}",
            f"--plugin=protoc-gen-go-grpc={go_grpc}",
            f"--go_out={out}",
            f"--go_opt={module}",
            f"--go-grpc_out={out}",
            f"--go-grpc_opt={module}",
        ],
        "Go",
    )
    return files_under(out, "clients/go/policydv1", "*.pb.go")


def gen_java(out: Path) -> list[Path]:
    """``clients/java/src/main/java/dev/policyd/v1/*.java`` (messages and the gRPC service class)."""
    java_protoc = tools.java_protoc(protoc_version())
    grpc_java = tools.maven_exe(*tools.PROTOC_GEN_GRPC_JAVA)
    dest = out / JAVA_SRC
    dest.mkdir(parents=True)
    args = [
        str(java_protoc),
        f"-I{PROTOS}",
        f"-I{grpc_tools_include()}",
        f"--plugin=protoc-gen-grpc-java={grpc_java}",
        f"--java_out={dest}",
        f"--grpc-java_out={dest}",
        *proto_files(),
    ]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"protoc failed for Java:\n{result.stderr}")
    return files_under(out, JAVA_SRC / "dev/policyd/v1", "*.java")


@dataclass(frozen=True)
class Target:
    generate: Callable[[Path], list[Path]]
    owns: tuple[str, ...]
    """Globs (from the repository root) of the files this target alone writes."""


TARGETS: dict[str, Target] = {
    "python": Target(gen_python, ("policyd/v1/*_pb2*.py*",)),
    "python-client": Target(gen_python_client, (f"{CLIENT_STUBS}/*_pb2*.py*",)),
    "go": Target(gen_go, ("clients/go/policydv1/*.pb.go",)),
    "java": Target(gen_java, (f"{JAVA_SRC}/dev/policyd/v1/*.java",)),
    "helm-schema": Target(gen_helm_schema, ("helm/policyd/values.schema.json",)),
}


def run(check: bool, only: list[str]) -> int:
    unknown = sorted(set(only) - set(TARGETS))
    if unknown:
        print(f"unknown targets: {', '.join(unknown)} (known: {', '.join(TARGETS)})", file=sys.stderr)
        return 2
    stale: list[str] = []
    for name, target in TARGETS.items():
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            produced = target.generate(out)
            owned = {p.relative_to(ROOT) for glob in target.owns for p in ROOT.glob(glob)}
            for rel in sorted(owned - set(produced)):
                if check:
                    stale.append(f"{rel} (no longer generated)")
                else:
                    (ROOT / rel).unlink()
            for rel in produced:
                dest = ROOT / rel
                if check:
                    if not dest.exists() or not filecmp.cmp(out / rel, dest, shallow=False):
                        stale.append(str(rel))
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(out / rel, dest)
    if stale:
        print("stale generated files (run: python scripts/gen.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("generated files are up to date" if check else "generated files written")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when committed files are stale")
    parser.add_argument("targets", nargs="*", help=f"only these targets ({', '.join(TARGETS)})")
    args = parser.parse_args()
    return run(args.check, args.targets)


if __name__ == "__main__":
    sys.exit(main())
