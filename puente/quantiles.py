"""Nearest-rank percentiles, the one definition the benchmarks and the AMD evaluation report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction


def nearest_rank(n: int, q: float) -> int:
    """The 1-based nearest rank of the ``q``-th percentile (0..100) of ``n`` values:
    ``ceil(q/100 * n)``, at least 1. Computed exactly (``round(x + 0.5)`` is not a ceiling:
    Python rounds halves to even, which put the median of 10 values on the 6th and the p95 of
    20 on the 20th)."""
    q_exact = Fraction(q).limit_denominator(10**6)
    return max(1, min(n, math.ceil(q_exact * n / 100)))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The smallest value with at least ``q`` % of the values at or below it (so the median of
    an even count is the lower middle value, and the p95 of fewer than 20 values is their
    maximum); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[nearest_rank(len(ordered), q) - 1]
