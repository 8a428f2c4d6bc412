"""Access to the real Asterisk 22 transcripts copied into ``tests/data/asterisk-transcripts``.

The copy in the repository is what the tests replay (``../shared`` is not needed to run them).
``*.log.txt`` files interleave both directions with chunk markers; :func:`log_chunks` returns
the exact TCP reads/writes as recorded, so tests can replay the original chunking too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "data" / "asterisk-transcripts"

_MARKER = re.compile(rb"#### (\S+) \+([0-9.]+)s(?: (\d+) bytes)?[^\n]*\n")


@dataclass(frozen=True)
class Chunk:
    direction: str  # "S->C", "C->S", "AST->APP", "APP->AST" or "NOTE"
    at_s: float
    data: bytes  # empty for NOTE lines


def path(relative: str) -> Path:
    p = ROOT / relative
    if not p.exists():
        raise FileNotFoundError(f"transcript {relative!r} is not in {ROOT}")
    return p


def read(relative: str) -> bytes:
    return path(relative).read_bytes()


def log_chunks(relative: str) -> list[Chunk]:
    """Parse a ``NAME.log.txt`` into its exact chunks, in time order."""
    raw = read(relative)
    chunks: list[Chunk] = []
    pos = 0
    while pos < len(raw):
        m = _MARKER.match(raw, pos)
        if m is None:
            raise ValueError(f"{relative}: no chunk marker at byte {pos}")
        direction, at_s, nbytes = m.group(1).decode(), float(m.group(2)), m.group(3)
        pos = m.end()
        if nbytes is None:
            chunks.append(Chunk(direction, at_s, b""))
            continue
        n = int(nbytes)
        chunks.append(Chunk(direction, at_s, raw[pos : pos + n]))
        pos += n
    return chunks


def names(folder: str, suffix: str) -> list[str]:
    """Scenario files in ``folder`` ending in ``suffix``, as paths relative to ROOT."""
    return sorted(f"{folder}/{p.name}" for p in (ROOT / folder).glob(f"*{suffix}"))
