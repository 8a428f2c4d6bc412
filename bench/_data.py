"""Where benchmarks find their inputs: the recorded Asterisk transcripts in the checkout."""

from __future__ import annotations

from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "asterisk-transcripts"


def transcript(relative: str) -> bytes:
    path = TRANSCRIPTS / relative
    if not path.is_file():
        raise SystemExit(
            f"benchmark input {relative!r} not found under {TRANSCRIPTS}: "
            "run the benchmarks from a checkout of Puente"
        )
    return path.read_bytes()
