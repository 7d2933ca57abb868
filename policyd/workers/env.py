"""The environment a supervisor hands each worker (read by :mod:`.link`; no imports, the supervisor stays light)."""

from __future__ import annotations

FD_ENV = "POLICYD_GROUP_FD"
"""The worker's end of its Unix socket pair with the supervisor."""
INDEX_ENV = "POLICYD_GROUP_WORKER"
"""The worker's index in the group (0 to N-1)."""
PARENT_ENV = "POLICYD_GROUP_PARENT"
"""The supervisor's pid (a worker whose parent is another has been orphaned before it started)."""
