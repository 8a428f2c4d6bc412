"""One percentile for the benchmarks and the AMD evaluation: nearest rank, computed exactly."""

from __future__ import annotations

from bench._common import percentile as bench_percentile
from dialer.amd._eval import percentile as eval_percentile
from puente.quantiles import percentile


def test_the_benchmarks_p99_is_the_nearest_rank() -> None:
    values = list(range(1, 101))  # 100 values: the p99 is the 99th, the p50 the 50th
    assert bench_percentile(values, 99) == 99  # (round-half-even gave the 100th: the maximum)
    assert bench_percentile(values, 50) == 50
    assert bench_percentile(list(range(1, 11)), 50) == 5  # the lower middle (was the 6th)
    assert bench_percentile([], 99) == 0.0
    assert percentile([], 99) is None
    for q in (50, 95, 99, 99.9):
        assert bench_percentile(values, q) == eval_percentile(values, q) == percentile(values, q)
