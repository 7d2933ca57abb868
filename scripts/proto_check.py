#!/usr/bin/env python3
"""Proto lint and the breaking-change check, with buf (installed with ``go install`` on first use).

    python scripts/proto_check.py                 # buf lint, then buf breaking against the baseline
    python scripts/proto_check.py --against REV   # compare with the contract at git revision REV

The baseline is the contract callers already have: on a branch, where it forked from
``main``; on ``main`` itself, the previous commit (so CI on main proves the last merge kept the
contract compatible). ``$PROTO_BREAKING_AGAINST`` overrides it. A baseline without ``protos/``
(or a clone too shallow to have it) has no contract to break, and the check says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tools

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def baseline() -> str | None:
    """The revision whose contract this one must stay compatible with."""
    if os.environ.get("PROTO_BREAKING_AGAINST"):
        return os.environ["PROTO_BREAKING_AGAINST"]
    head, main = git("rev-parse", "HEAD"), git("rev-parse", "--verify", "-q", "main")
    if main is not None and head != main:
        return git("merge-base", "HEAD", "main")
    return "HEAD~1"


def export_protos(rev: str, dest: Path) -> bool:
    """``protos/`` as it was at ``rev``, into ``dest``; False when there is none.

    File by file with ``git show`` (no tar archive: ``tarfile``'s extraction filters are missing
    from Python 3.11.0-3.11.3, which pyproject.toml's ``requires-python`` admits).
    """
    if git("rev-parse", "--verify", "-q", f"{rev}^{{commit}}") is None:
        return False
    listing = git("ls-tree", "-r", "-z", "--name-only", rev, "--", "protos")
    if not listing:
        return False
    for name in listing.split("\0"):
        if not name:
            continue
        blob = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, capture_output=True, check=False)
        if blob.returncode != 0:
            return False
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob.stdout)
    return (dest / "protos").is_dir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", help="git revision of the baseline contract (default: see above)")
    args = parser.parse_args()
    buf = str(tools.go_tool(*tools.BUF))

    if subprocess.run([buf, "lint"], cwd=ROOT, check=False).returncode != 0:
        print("buf lint failed (rules: buf.yaml)", file=sys.stderr)
        return 1
    print("buf lint: ok")

    rev = args.against or baseline()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp)
        if rev is None or not export_protos(rev, old):
            print(f"buf breaking: skipped, no earlier contract at {rev or 'any revision'}")
            return 0
        shutil.copyfile(ROOT / "buf.yaml", old / "buf.yaml")  # today's module layout and rules
        if subprocess.run([buf, "breaking", "--against", str(old)], cwd=ROOT, check=False).returncode != 0:
            print(f"buf breaking: the contract breaks callers of {rev} (rules: buf.yaml)", file=sys.stderr)
            return 1
    print(f"buf breaking: ok against {rev}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
