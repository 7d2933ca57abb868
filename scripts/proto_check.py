#!/usr/bin/env python3
"""Proto lint and the breaking-change check, with buf (installed with ``go install`` on first use).

    python scripts/proto_check.py                 # buf lint, then buf breaking against the baseline
    python scripts/proto_check.py --against REV   # compare with the contract at git revision REV

The baseline is the contract callers already have: on a branch, where it forked from
``main``; on ``main`` itself, the previous commit (so CI on main proves the last merge kept the
contract compatible). ``$PROTO_BREAKING_AGAINST`` overrides it. A baseline without ``protos/``
(or a clone too shallow to have it) has no contract to break, and the check says so.

A deliberate, versioned break is listed in ``protos/ACKNOWLEDGED_BREAKS`` (one per line: the
buf rule, a tab, the exact buf message, a tab, where it is documented); those findings are
reported and pass, any other fails. Each entry names the contract version that made the change.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tools

ROOT = Path(__file__).resolve().parent.parent
ACKNOWLEDGED = ROOT / "protos" / "ACKNOWLEDGED_BREAKS"


def acknowledged() -> set[tuple[str, str]]:
    """(rule, message) pairs of the deliberate breaks; comments (#) and blank lines skipped."""
    if not ACKNOWLEDGED.exists():
        return set()
    found = set()
    for number, line in enumerate(ACKNOWLEDGED.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not all(parts):
            raise SystemExit(f"{ACKNOWLEDGED}:{number}: expected RULE<tab>MESSAGE<tab>WHERE DOCUMENTED")
        found.add((parts[0], parts[1]))
    return found


def breaking(buf: str, old: Path) -> int:
    """buf breaking against ``old``; acknowledged findings are printed and pass."""
    run = subprocess.run(
        [buf, "breaking", "--against", str(old), "--error-format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode == 0:
        return 0
    findings = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    if not findings:  # buf failed for another reason than a finding
        print(run.stdout + run.stderr, file=sys.stderr)
        return 1
    known = acknowledged()
    unacknowledged = 0
    for f in findings:
        where = f"{f.get('path')}:{f.get('start_line')}:{f.get('start_column')}"
        if (f.get("type"), f.get("message")) in known:
            print(f"buf breaking: acknowledged {f.get('type')} at {where}: {f.get('message')}")
        else:
            unacknowledged += 1
            print(f"{where}: {f.get('type')}: {f.get('message')}", file=sys.stderr)
    return 1 if unacknowledged else 0


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
        if breaking(buf, old) != 0:
            print(f"buf breaking: the contract breaks callers of {rev} (rules: buf.yaml)", file=sys.stderr)
            return 1
    print(f"buf breaking: ok against {rev}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
