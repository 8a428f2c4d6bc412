"""``puente bench amd``: how many real-time calls one core can run through the AMD detector.

Offline, on one core (this process), each detector is fed 20 ms frames (320 bytes) of
synthetic calls as fast as it takes them, until it has nothing more to say: a verdict, and after
MACHINE the voicemail cue. The calls are made here with numpy (seeded), so the benchmark needs
neither espeak-ng nor a corpus: voice-like bursts (harmonics of a gliding pitch, syllables and
pauses) over line noise; a machine greets for 8 s then beeps, a person says one short word.
``--corpus DIR`` uses the WAVs of a corpus made by ``puente amd corpus`` instead.

``frames_per_s`` is frames analysed per CPU second; ``realtime_streams_per_core`` is that over
50 (a call sends 50 frames a second). The app_amd baseline runs on the same calls in the same
run. The figure through the AudioSocket server (issue 6's goal: >= 2,000 streams per core)
needs the server integration and is not measured here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench._common import emit
from dialer.amd import AmdDetector, AppAmdDetector, frames_of, read_labels, read_wav_8k

SAMPLE_RATE = 8000


def _voice(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Syllable-like bursts of a harmonic voice with a gliding pitch, with short pauses."""
    out: list[np.ndarray] = []
    total = 0
    while total < seconds * SAMPLE_RATE:
        n = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
        f0 = rng.uniform(100, 220) * np.linspace(1.0, rng.uniform(0.85, 1.15), n)
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        y = sum(np.sin(h * phase) / h for h in range(1, 16))
        y *= np.hanning(n) * 3000
        gap = np.zeros(int(rng.uniform(0.03, 0.25) * SAMPLE_RATE))
        out += [y, gap]
        total += n + len(gap)
    return np.concatenate(out)


def synthetic_calls(count: int, seed: int = 1) -> list[np.ndarray]:
    """Half machines (8 s greeting, 0.5 s beep, 2 s silence), half people (one word, silence)."""
    rng = np.random.default_rng(seed)
    calls = []
    for i in range(count):
        lead = np.zeros(int(rng.uniform(0.1, 1.2) * SAMPLE_RATE))
        if i % 2 == 0:
            t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
            beep = 3000 * np.sin(2 * np.pi * 1000 * t)
            gap = np.zeros(SAMPLE_RATE // 2)
            body = np.concatenate([_voice(rng, 8.0), gap, beep, np.zeros(2 * SAMPLE_RATE)])
        else:
            body = np.concatenate([_voice(rng, 0.5), np.zeros(4 * SAMPLE_RATE)])
        x = np.concatenate([lead, body])
        x = x + rng.standard_normal(len(x)) * 60
        calls.append(np.clip(np.round(x), -32768, 32767).astype("<i2"))
    return calls


def corpus_calls(corpus: Path) -> list[np.ndarray]:
    return [read_wav_8k(corpus / label["file"]) for label in read_labels(corpus)]


def measure(make: type, calls: list[list[bytes]], min_seconds: float) -> dict[str, float | int]:
    """Feed every call until its detector is done, over and over for ``min_seconds``."""
    frames = 0
    passes = 0
    t0 = time.process_time()
    while True:
        for call in calls:
            detector = make()
            feed = detector.feed
            for frame in call:
                feed(frame)
                frames += 1
                if detector.done:
                    break
        passes += 1
        cpu_s = time.process_time() - t0
        if cpu_s >= min_seconds:
            break
    return {
        "frames": frames,
        "passes": passes,
        "cpu_s": round(cpu_s, 3),
        "frames_per_s": round(frames / cpu_s),
        "us_per_frame": round(1e6 * cpu_s / frames, 2),
        "realtime_streams_per_core": round(frames / cpu_s / 50),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench amd", description=__doc__)
    parser.add_argument("--calls", type=int, default=40, help="synthetic calls (40)")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per detector")
    parser.add_argument("--corpus", type=Path, help="use this corpus's WAVs instead")
    args = parser.parse_args(argv)
    samples = corpus_calls(args.corpus) if args.corpus else synthetic_calls(args.calls)
    calls = [frames_of(x)[:-1] or frames_of(x) for x in samples]
    source = str(args.corpus) if args.corpus else f"synthetic x{args.calls}"
    for name, make in (("puente", AmdDetector), ("app_amd", AppAmdDetector)):
        stats = measure(make, calls, args.seconds)
        emit(
            "amd",
            detector=name,
            calls=source,
            frame_bytes=320,
            **stats,
            audiosocket_streams_per_core=None,
            note="offline, one core; the AudioSocket figure needs the server integration",
        )
    return 0
