"""The benches report the collector's pauses of the process they measure (a latency tail often
starts with one): one pause per collection while the run lasts, none after it."""

from __future__ import annotations

import gc

from bench._common import GcPauses


def test_each_collection_during_the_run_is_one_pause() -> None:
    with GcPauses() as pauses:
        gc.collect()
        gc.collect(0)
    gc.collect()  # after the run: not counted
    assert len(pauses.pauses_ms) == 2
    assert all(p >= 0.0 for p in pauses.pauses_ms)
    figures = pauses.figures()
    assert figures["gc_pauses"] == 2
    assert figures["gc_pause_max_ms"] == round(max(pauses.pauses_ms), 2)
    assert figures["gc_pauses_over_5ms"] == sum(1 for p in pauses.pauses_ms if p > 5.0)
    assert pauses not in gc.callbacks
