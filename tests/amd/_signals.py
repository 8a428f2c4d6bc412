"""Synthetic test signals at 8 kHz (numpy, seeded): voices, tones, noise, frames."""

from __future__ import annotations

import numpy as np

SR = 8000


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SR))


def noise(seconds: float, rms: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(round(seconds * SR)) * rms


def tone(hz: float, seconds: float, rms: float = 2000.0, ramp_ms: float = 5.0) -> np.ndarray:
    n = round(seconds * SR)
    y = np.sqrt(2) * rms * np.sin(2 * np.pi * hz * np.arange(n) / SR)
    r = min(n // 2, round(ramp_ms * SR / 1000))
    if r:
        env = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, r))
        y[:r] *= env
        y[-r:] *= env[::-1]
    return y


def vowel(
    seconds: float,
    f0: float = 200.0,
    harmonics: int = 15,
    vibrato_hz: float = 0.0,
    rms: float = 2000.0,
    weights: list[float] | None = None,
) -> np.ndarray:
    """A held vowel: harmonics of ``f0`` (optionally with vibrato) under a formant-like tilt."""
    n = round(seconds * SR)
    t = np.arange(n) / SR
    f = f0 * (1 + 0.02 * np.sin(2 * np.pi * vibrato_hz * t)) if vibrato_hz else np.full(n, f0)
    phase = 2 * np.pi * np.cumsum(f) / SR
    w = weights or [1.0 / h for h in range(1, harmonics + 1)]
    y = sum(a * np.sin((h + 1) * phase) for h, a in enumerate(w) if (h + 1) * f0 < 3600)
    y = np.asarray(y, dtype=float)
    return y * rms / (np.sqrt((y**2).mean()) + 1e-9)


def voice(seconds: float, seed: int = 0, rms: float = 2500.0) -> np.ndarray:
    """Speech-like: syllables of a harmonic voice with a gliding pitch, short pauses between."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    total = 0
    while total < seconds * SR:
        n = int(rng.uniform(0.12, 0.3) * SR)
        f0 = rng.uniform(100, 220) * np.linspace(1.0, rng.uniform(0.85, 1.15), n)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        y = sum(np.sin(h * phase) / h for h in range(1, 16))
        y = np.asarray(y) * np.hanning(n)
        gap = np.zeros(int(rng.uniform(0.03, 0.12) * SR))
        parts += [y, gap]
        total += n + len(gap)
    x = np.concatenate(parts)[: round(seconds * SR)]
    return x * rms / (np.sqrt((x[np.abs(x) > 0] ** 2).mean()) + 1e-9)


def join(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


def pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype("<i2")


def frames(x: np.ndarray, size: int = 320) -> list[bytes]:
    raw = pcm(x).tobytes()
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def constant_frames(mean_abs: int, count: int, size: int = 320) -> list[bytes]:
    """Frames whose mean |sample| is exactly ``mean_abs`` (alternating signs)."""
    n = size // 2
    x = np.full(n, mean_abs, dtype="<i2")
    x[1::2] *= -1
    return [x.tobytes()] * count
