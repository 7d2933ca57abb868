#!/usr/bin/env python3
"""Regenerates every generated artifact from its source of truth.

    python scripts/gen.py           # write the generated files
    python scripts/gen.py --check   # fail (exit 1) when a committed file is stale

Generated files are never edited by hand; CI runs ``--check``.
Targets: Python stubs from ``protos/`` (more targets register in ``TARGETS``).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from helm_schema import gen_helm_schema

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def gen_python(out: Path) -> list[Path]:
    """``policyd/v1/policyd_pb2{,_grpc}.py`` and ``.pyi``, importable as ``policyd.v1``."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTOS)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
    ]
    if protoc.main([*args, *files]) != 0:
        raise SystemExit("protoc failed for Python")
    return [p.relative_to(out) for p in out.rglob("*_pb2*.py*")]


TARGETS: dict[str, Callable[[Path], list[Path]]] = {"python": gen_python, "helm-schema": gen_helm_schema}


def run(check: bool, only: list[str]) -> int:
    stale: list[str] = []
    for name, target in TARGETS.items():
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            for rel in target(out):
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
