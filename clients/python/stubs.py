"""The client's copy of the gRPC stubs, produced at build time from the daemon's generated ones.

The repository commits one generated copy of the Python stubs, ``policyd/v1`` (written by
``scripts/gen.py`` from ``protos/``). The client ships them as ``policyd_client.v1`` with their
one import rewritten, so a caller needs no daemon installed; this module makes that copy:

* ``setup.py`` calls :func:`write` when building a wheel (into the build folder) or an sdist
  (into the release tree, so an sdist builds without the repository);
* ``python clients/python/stubs.py`` writes them into ``src/policyd_client/v1`` (git-ignored)
  for mypy and editable installs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "policyd" / "v1"
"""The daemon's generated stubs in a repository checkout (absent in an unpacked sdist)."""
PATTERN = "*_pb2*.py*"


def write(dest: Path) -> list[Path]:
    """Write the rewritten stubs into ``dest``; nothing when there is no repository around (an sdist build)."""
    sources = sorted(SOURCE.glob(PATTERN))
    if not sources:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        text = src.read_text(encoding="utf-8").replace("from policyd.v1 import", "from policyd_client.v1 import")
        if re.search(r"^\s*(from|import) policyd\.v1\b", text, re.MULTILINE):
            raise SystemExit(f"policyd-client: {src.name} still imports policyd.v1 (protoc's output changed)")
        target = dest / src.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":
    done = write(HERE / "src" / "policyd_client" / "v1")
    if not done:
        sys.exit(f"policyd-client: no generated stubs under {SOURCE} (run scripts/gen.py python)")
    print(f"wrote {len(done)} stub files into {HERE / 'src' / 'policyd_client' / 'v1'}")
