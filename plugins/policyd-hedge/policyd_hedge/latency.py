"""Observed latencies per model, for the hedge delay (the primary's p90).

Kept in the plugin's process, per model id, over a window of recent successful,
uncached calls; a restart starts again from the configured initial delay.
"""

from __future__ import annotations

import math
from collections import deque


class LatencyWindow:
    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._seen: dict[str, deque[float]] = {}

    def observe(self, model_id: str, latency_ms: float) -> None:
        self._seen.setdefault(model_id, deque(maxlen=self.size)).append(latency_ms)

    def count(self, model_id: str) -> int:
        return len(self._seen.get(model_id, ()))

    def quantile_ms(self, model_id: str, q: float) -> float | None:
        """The ``q`` quantile (nearest rank) of the window, or None before any observation."""
        seen = sorted(self._seen.get(model_id, ()))
        if not seen:
            return None
        rank = max(1, math.ceil(q * len(seen)))
        return seen[rank - 1]

    def clear(self) -> None:
        self._seen.clear()


LATENCIES = LatencyWindow()
"""The process-wide window the ``hedged`` strategy reads and feeds."""
