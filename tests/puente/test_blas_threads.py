"""The service's process keeps BLAS to one thread (its numeric work is small and in the event
loop: BLAS threads would spin a core between calls); an operator's own setting wins."""

from __future__ import annotations

import os
import subprocess
import sys

_PROBE = (
    "import puente, os; print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS'])"
)


def _probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**clean, **env}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_blas_runs_one_thread_unless_the_operator_says_otherwise() -> None:
    assert _probe() == "1 1"
    assert _probe(OPENBLAS_NUM_THREADS="4") == "4 1"
