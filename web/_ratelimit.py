"""A sliding-window rate limiter (pure: time is an argument), bounded in memory."""

from __future__ import annotations

import contextlib
from collections import deque


class SlidingWindowLimiter:
    """At most ``limit`` hits per key in any ``window_s``.

    At most ``max_keys`` keys are tracked; when that many are live at once, new keys are
    refused (:meth:`hit` returns the full window) rather than the memory growing.
    """

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = 100_000) -> None:
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("limit, window_s and max_keys must be positive")
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._hits)

    def retry_after_s(self, key: str, now: float) -> float:
        """0 when a hit for ``key`` is allowed now, else the seconds until it will be."""
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._prune(now)
                if len(self._hits) >= self.max_keys:
                    return self.window_s
            return 0.0
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) < self.limit:
            return 0.0
        return max(0.0, hits[0] + self.window_s - now)

    def record(self, key: str, now: float) -> None:
        self._hits.setdefault(key, deque(maxlen=self.limit)).append(now)

    def forgive(self, key: str, at: float) -> None:
        """Take back the hit recorded for ``key`` at ``at`` (one that turned out allowed: a
        login that succeeded), if it is still counted."""
        hits = self._hits.get(key)
        if hits is not None:
            with contextlib.suppress(ValueError):
                hits.remove(at)

    def _prune(self, now: float) -> None:
        cutoff = now - self.window_s
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]
