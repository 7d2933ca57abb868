"""Where a daemon keeps its state (cache, ledger, decision files): one private directory."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """``$POLICYD_DATA_DIR``, else ``$XDG_STATE_HOME/policyd``, else ``~/.local/state/policyd``."""
    if os.environ.get("POLICYD_DATA_DIR"):
        return Path(os.environ["POLICYD_DATA_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "policyd"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if needed; cache and ledger live below it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
