#!/usr/bin/env python3
"""Regenerates every generated artifact from its source of truth.

    python scripts/gen.py                  # write the generated files
    python scripts/gen.py --check          # fail (exit 1) when a committed file is stale
    python scripts/gen.py go java          # only these targets

Generated files are never edited by hand; CI runs ``--check``. It covers what is committed,
following each ecosystem's convention:

- ``python``: the daemon's stubs, ``policyd/v1`` (protoc from grpcio-tools). The one committed
  Python copy: the client package copies it (its one import rewritten) when it is built,
  ``clients/python/stubs.py``.
- ``go``: ``clients/go/policydv1`` (protoc-gen-go and protoc-gen-go-grpc, ``go install``-ed);
  committed because Go modules are consumed from source.
- ``helm-schema``: ``helm/policyd/values.schema.json`` from the commented ``values.yaml``.

The Java classes are not committed: the Maven build generates them (protobuf-maven-plugin in
``clients/java/pom.xml``, protoc and protoc-gen-grpc-java from Maven Central).

Each target owns a set of files: files it no longer produces are deleted (or reported by ``--check``).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
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


def files_under(out: Path, folder: Path | str, pattern: str) -> list[Path]:
    return sorted(p.relative_to(out) for p in (out / folder).glob(pattern))


def gen_python(out: Path) -> list[Path]:
    """``policyd/v1/policyd_pb2{,_grpc}.py`` and ``.pyi``, importable as ``policyd.v1``."""
    protoc([f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"], "Python")
    return files_under(out, "policyd/v1", "*_pb2*.py*")


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


@dataclass(frozen=True)
class Target:
    generate: Callable[[Path], list[Path]]
    owns: tuple[str, ...]
    """Globs (from the repository root) of the files this target alone writes."""


TARGETS: dict[str, Target] = {
    "python": Target(gen_python, ("policyd/v1/*_pb2*.py*",)),
    "go": Target(gen_go, ("clients/go/policydv1/*.pb.go",)),
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
