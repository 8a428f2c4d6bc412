"""Making the corpus's sounds: espeak-ng speech, sox telephone passes, numpy tones and noise.

Every external step is repeatable: espeak-ng has no randomness and sox runs with ``-R -D``
(repeatable, no dither); the numpy parts draw from the Generator they are given.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

import numpy as np

from dialer.amd._exceptions import CorpusError
from dialer.amd._frames import BLOCK_SAMPLES, SAMPLE_RATE

_SR = SAMPLE_RATE
FULL_SCALE = 32768.0


def tool_versions() -> dict[str, str]:
    """The versions of espeak-ng, sox and numpy (whose Generator draws the noise, the levels
    and every choice: numpy does not promise the same streams across versions);
    :class:`CorpusError` when espeak-ng or sox is missing."""
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        raise CorpusError(
            f"{' and '.join(missing)} not found: install the Debian package(s) "
            f"{' '.join(missing)} (./dev setup does it as root)"
        )
    espeak = _run(["espeak-ng", "--version"]).decode(errors="replace").split("Data at")[0]
    sox = _run(["sox", "--version"]).decode(errors="replace")
    return {
        "espeak-ng": " ".join(espeak.split()),
        "sox": " ".join(sox.split()),
        "numpy": np.__version__,
    }


def _run(cmd: Sequence[str], data: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CorpusError(f"{cmd[0]} failed: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-300:]
        raise CorpusError(f"{cmd[0]} exited with {proc.returncode}: {err}")
    return proc.stdout


_SOX = ("sox", "-R", "-D", "-V1")
_RAW_S16 = ("-t", "raw", "-r", str(_SR), "-e", "signed", "-b", "16", "-c", "1")


@functools.lru_cache(maxsize=256)
def speech(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering at 8 kHz, silence trimmed at both ends (float64, full scale 1)."""
    with tempfile.TemporaryDirectory(prefix="puente-amd-") as tmp:
        path = os.path.join(tmp, "speech.wav")
        _run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", path, text])
        raw = _run([*_SOX, path, *_RAW_S16, "-", "rate", "-h", str(_SR)])
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / FULL_SCALE
    return _trim(x)


def _envelope(x: np.ndarray, step: int) -> np.ndarray:
    n = len(x) // step
    if n == 0:
        return np.zeros(0)
    return np.sqrt((x[: n * step].reshape(n, step) ** 2).mean(axis=1))


def _trim(x: np.ndarray) -> np.ndarray:
    step = 40  # 5 ms
    env = _envelope(x, step)
    if len(env) == 0 or env.max() <= 0:
        return x
    active = np.flatnonzero(env > env.max() * 10 ** (-40 / 20))
    return x[active[0] * step : (active[-1] + 1) * step].copy()


def active_rms(x: np.ndarray) -> float:
    env = _envelope(x, BLOCK_SAMPLES)
    if len(env) == 0 or env.max() <= 0:
        return 1e-9
    loud = env[env > env.max() * 0.1]
    return float(np.sqrt((loud**2).mean()))


def tone(rng: np.random.Generator, hz: float, ms: float, rms: float) -> np.ndarray:
    n = round(ms * _SR / 1000)
    t = np.arange(n) / _SR
    y = np.sqrt(2) * rms * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    ramp = min(40, n // 2)
    if ramp:
        r = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        y[:ramp] *= r
        y[-ramp:] *= r[::-1]
    return y


def noise(rng: np.random.Generator, n: int, rms: float, colour: str) -> np.ndarray:
    w = rng.standard_normal(n)
    if colour == "pink":
        spec = np.fft.rfft(w)
        f = np.fft.rfftfreq(n, 1 / _SR)
        spec[1:] /= np.sqrt(f[1:] / 100.0)
        spec[0] = 0
        w = np.fft.irfft(spec, n)
    return w * (rms / (np.sqrt((w**2).mean()) + 1e-12))


def g711(x16: bytes, codec: str) -> bytes:
    """Telephone band-pass, then the G.711 round trip(s), all through sox."""
    encodings = {"ulaw": "u-law", "alaw": "a-law"}
    out = x16
    for i, name in enumerate(codec.split(">")):
        effects = ["sinc", "300-3400"] if i == 0 else []
        coded = _run(
            [*_SOX, *_RAW_S16, "-", "-t", "raw", "-e", encodings[name], "-b", "8", "-", *effects],
            out,
        )
        out = _run(
            [
                *_SOX,
                *("-t", "raw", "-r", str(_SR), "-e", encodings[name], "-b", "8", "-c", "1", "-"),
                *("-t", "raw", "-e", "signed", "-b", "16", "-"),
            ],
            coded,
        )
    return out
