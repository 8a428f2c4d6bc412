"""Audio a simulated callee sends after answering: 8 kHz signed 16-bit little-endian PCM.

Synthetic and deterministic (seeded): speech-like bursts (band-limited noise shaped by a
syllable envelope, with a voiced harmonic component), line noise, answering-machine beeps (a
steady 1,000 Hz tone) and fax calling tones (CNG: 1,100 Hz, 0.5 s on, 3 s off). Puente's AMD
detector tells them apart as it does real calls (``tests/amd/test_live.py`` checks it); the
accuracy corpus (espeak-ng voices) is generated separately by ``puente amd corpus``.

A timeline is a list of segments ``(kind, seconds)`` with kind in ``silence``, ``speech``,
``beep``, ``fax``; :func:`render` turns it into PCM, :func:`frames` slices PCM into
AudioSocket payloads.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pbx.sim._callees import CallFate

RATE = 8000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2  # 320

Segment = tuple[str, float]


def timeline(fate: CallFate) -> list[Segment]:
    """What the far end says after answer, by outcome."""
    if fate.outcome == "human":
        # "¿Bueno?" then silence while waiting for someone to speak.
        return [("silence", 0.3), ("speech", fate.greeting_s), ("silence", 30.0)]
    if fate.outcome == "machine":
        segs: list[Segment] = [("silence", 0.4)]
        remaining = fate.greeting_s
        while remaining > 0:  # words and short pauses
            word = min(remaining, 0.9)
            segs += [("speech", word), ("silence", 0.15)]
            remaining -= word + 0.15
        if fate.beep:
            segs += [("silence", 0.3), ("beep", 0.5)]
        return [*segs, ("silence", 30.0)]
    if fate.outcome == "fax":
        return [("fax", 0.5), ("silence", 3.0)] * 10
    return [("silence", 30.0)]


def content_s(segments: list[Segment]) -> float:
    """Seconds until the last segment: what the callee says (and beeps) before the long
    silence that ends every timeline."""
    return sum(seconds for _, seconds in segments[:-1])


def sounding_frames(segments: list[Segment]) -> list[bool]:
    """Per 20 ms frame of :func:`render`'s output: does the far end make a sound in it (any
    sample of speech, a beep or a fax tone), or is it line silence."""
    sounding = np.zeros(sum(max(int(seconds * RATE), 0) for _, seconds in segments), bool)
    at = 0
    for kind, seconds in segments:
        n = max(int(seconds * RATE), 0)
        if kind != "silence":
            sounding[at : at + n] = True
        at += n
    per_frame = FRAME_BYTES // 2
    return [bool(sounding[i : i + per_frame].any()) for i in range(0, len(sounding), per_frame)]


def render(segments: list[Segment], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    parts = []
    for kind, seconds in segments:
        n = int(seconds * RATE)
        if n <= 0:
            continue
        t = np.arange(n) / RATE
        if kind == "silence":
            x = rng.normal(0.0, 30.0, n)  # line noise, well under speech level
        elif kind == "beep":
            x = 8000.0 * np.sin(2 * np.pi * 1000.0 * t)
        elif kind == "fax":  # CNG, the calling fax's tone
            x = 8000.0 * np.sin(2 * np.pi * 1100.0 * t)
        elif kind == "speech":
            f0 = rng.uniform(100, 220)
            voiced = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8))
            noise = np.convolve(rng.normal(0, 1, n), np.ones(4) / 4, mode="same")
            syllables = 0.5 - 0.5 * np.cos(2 * np.pi * rng.uniform(3.5, 5.5) * t)
            x = 2500.0 * syllables * (voiced + 0.6 * noise)
        else:
            raise ValueError(f"unknown segment kind {kind!r}")
        parts.append(x)
    if not parts:
        return b""
    pcm = np.clip(np.concatenate(parts), -32768, 32767).astype("<i2")
    return pcm.tobytes()


def frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> Iterator[bytes]:
    """AudioSocket payloads; the last one may be shorter (as Asterisk sends it)."""
    for i in range(0, len(pcm), frame_bytes):
        yield pcm[i : i + frame_bytes]


def rms(pcm: bytes) -> float:
    if not pcm:
        return 0.0
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))
