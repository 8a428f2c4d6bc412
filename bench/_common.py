"""Shared helpers for benchmarks: JSON-lines output and a description of the machine."""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

from puente.quantiles import percentile as nearest_rank_percentile


def machine() -> dict[str, Any]:
    """Facts about the machine a figure was measured on."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
    }


def emit(bench: str, **fields: Any) -> None:
    """Print one JSON object (one line) for benchmark ``bench``."""
    record = {"bench": bench, **fields, "machine": machine()}
    sys.stdout.write(json.dumps(record, sort_keys=False) + "\n")
    sys.stdout.flush()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank (:mod:`puente.quantiles`); 0.0 for no
    values."""
    found = nearest_rank_percentile(values, q)
    return 0.0 if found is None else found


class CpuTimer:
    """Process CPU time and wall time over a block: ``cpu_share`` is CPU seconds per wall second.

    ``user_share`` and ``sys_share`` split it: time in our code versus in the kernel (on
    loopback the kernel's TCP work for a send or a receive is charged to the process doing it).
    """

    def __enter__(self) -> CpuTimer:
        self._t0 = os.times()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        t1 = os.times()
        self.wall_s = time.perf_counter() - self._wall0
        self.user_s = t1.user - self._t0.user
        self.sys_s = t1.system - self._t0.system
        self.cpu_s = self.user_s + self.sys_s

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def user_share(self) -> float:
        return self.user_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def sys_share(self) -> float:
        return self.sys_s / self.wall_s if self.wall_s > 0 else 0.0


class GcPauses:
    """Cyclic-collector pauses in this process while a run lasts (the event loop stops for each:
    a latency tail often starts with one)."""

    def __init__(self) -> None:
        self.pauses_ms: list[float] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses_ms.append((time.perf_counter() - self._t0) * 1000)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def figures(self) -> dict[str, float]:
        """How many pauses, the longest, and how many over 5 ms."""
        return {
            "gc_pauses": len(self.pauses_ms),
            "gc_pause_max_ms": round(max(self.pauses_ms, default=0.0), 2),
            "gc_pauses_over_5ms": sum(1 for p in self.pauses_ms if p > 5.0),
        }
