"""Many detectors fed together give exactly what each gives fed alone, event for event."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dialer.amd import (
    AmdDetector,
    AmdSettings,
    feed_batch,
    frames_of,
    read_labels,
    read_wav_8k,
)
from dialer.amd._tone import ToneAnalyser, spectra, tonal_rows
from tests.amd._signals import join, noise, pcm, silence, tone, voice, vowel


def _calls() -> list[np.ndarray]:
    """Every kind of call the detector rules care about, over clean and noisy lines."""
    calls = [
        join(silence(0.4), voice(0.6, seed=1), silence(3.0)),
        join(silence(0.3), voice(0.5, seed=2), silence(0.7), voice(0.5, seed=3), silence(2.0)),
        join(silence(0.3), voice(8.0, seed=4), silence(1.0)),
        join(silence(0.5), voice(5.0, seed=5), silence(0.4), tone(1000, 0.5), silence(2.0)),
        join(silence(0.3), voice(0.8, seed=6), silence(0.35), tone(850, 0.4), silence(2.0)),
        join(silence(0.3), voice(0.8, seed=7), silence(0.31), tone(1400, 0.1), silence(2.0)),
        join(tone(1100, 0.5), silence(3.0)),
        join(tone(913.8, 0.28), tone(1370.6, 0.28), tone(1776.7, 0.38), silence(1.0)),
        join(silence(1.9), voice(6.0, seed=8)),
        join(silence(0.3), vowel(1.5, f0=180, vibrato_hz=5), silence(2.0)),
        silence(5.0),
        noise(5.0, 600, seed=9),
        join(noise(1.0, 30, seed=10), noise(5.0, 600, seed=11)),
    ]
    noisy = [x + noise(len(x) / 8000, 300, seed=20 + i) for i, x in enumerate(calls[:6])]
    return calls + noisy


def _one_by_one(payloads: list[bytes], settings: AmdSettings) -> tuple[list, AmdDetector]:
    d = AmdDetector(settings)
    events = []
    for p in payloads:
        ev = d.feed(p)
        while ev is not None:
            events.append(ev)
            ev = d._pop()
    return events, d


def _together(
    streams: list[list[bytes]], settings: list[AmdSettings], seed: int
) -> tuple[list[list], list[AmdDetector]]:
    """Feed every stream at once, 0-3 payloads per stream per round, as a server's ticks do."""
    rng = random.Random(seed)
    dets = [AmdDetector(s) for s in settings]
    events: list[list] = [[] for _ in streams]
    index = {d: i for i, d in enumerate(dets)}
    pos = [0] * len(streams)
    while any(p < len(s) for p, s in zip(pos, streams, strict=True)):
        batch = []
        for i, s in enumerate(streams):
            n = rng.choice((0, 1, 2, 2, 3))
            if n and pos[i] < len(s):
                batch.append((dets[i], s[pos[i] : pos[i] + n]))
                pos[i] += n
        for det, ev in feed_batch(batch):
            events[index[det]].append(ev)
    return events, dets


@pytest.mark.parametrize("size", [320, 480, 160, 960])
def test_feeding_together_equals_feeding_one_by_one(size: int) -> None:
    calls = _calls()
    streams = [[bytes(f) for f in _payloads(x, size)] for x in calls]
    settings = [AmdSettings()] * len(streams)
    got, dets = _together(streams, settings, seed=size)
    for i, payloads in enumerate(streams):
        want, alone = _one_by_one(payloads, settings[i])
        assert got[i] == want, i
        assert dets[i].now_ms == alone.now_ms
        assert dets[i].finish() == alone.finish()
        assert dets[i].cue == alone.cue


def test_detectors_with_other_settings_and_bad_payloads_in_one_batch() -> None:
    calls = _calls()
    streams = [[bytes(f) for f in _payloads(x, 320)] for x in calls]
    # Faults where feed would meet them: an odd payload, one over the cap.
    streams[1] = [*streams[1][:30], b"\x00" * 321, *streams[1][30:]]
    streams[3] = [*streams[3][:250], bytes(2000), *streams[3][250:]]
    streams[4] = [*streams[4][:10], b"", *streams[4][10:]]  # empty: fine, nothing in it
    other = AmdSettings(beep_low_hz=500, tone_purity=0.5, greeting_ms=2000, vad_mode=2)
    settings = [other if i % 2 else AmdSettings() for i in range(len(streams))]
    got, dets = _together(streams, settings, seed=7)
    for i, payloads in enumerate(streams):
        want, alone = _one_by_one(payloads, settings[i])
        assert got[i] == want, i
        assert dets[i].finish() == alone.finish()
    assert got[1][0].cause == "BADFRAME-321"
    assert dets[3].verdict is not None


def test_a_done_detector_takes_nothing() -> None:
    d = AmdDetector()
    d.hangup()
    assert feed_batch([(d, [bytes(320)] * 5)]) == []
    assert d.now_ms == 0


def test_the_batched_tone_test_equals_the_one_by_one() -> None:
    rng = np.random.default_rng(3)
    windows = [
        tone(rng.uniform(300, 2500), 0.04, rms=rng.uniform(50, 5000), ramp_ms=0)
        + noise(0.04, rng.uniform(0, 800), seed=i)
        for i in range(300)
    ]
    windows += [vowel(0.04, f0=rng.uniform(90, 300)) for _ in range(100)]
    windows += [noise(0.04, rng.uniform(1, 3000), seed=1000 + i) for i in range(100)]
    windows += [join(silence(0.02), tone(1000, 0.02, ramp_ms=0)) for _ in range(20)]
    x = pcm(np.stack(windows)).astype(np.float64)
    p = spectra(x)
    settings = [AmdSettings(), AmdSettings(beep_low_hz=600, tone_purity=0.8)]
    analysers = []
    for i in range(len(p)):
        a = ToneAnalyser(settings[i % 2])
        if i % 3:  # some have learnt a line's noise, at all sorts of levels
            for j in range(1 + i % 4):
                a.learn_noise(ToneAnalyser.spectrum(noise(0.04, 10 + i * 3, seed=j) * 1.0))
        analysers.append(a)
    levels = [float(v) for v in rng.uniform(20, 80, len(p))]
    got = tonal_rows(p, levels, analysers)
    tonal = 0
    for i, a in enumerate(analysers):
        assert np.array_equal(p[i], ToneAnalyser.spectrum(x[i]))
        frame = a.analyse(p[i], levels[i])
        want = frame if a.is_tonal(frame) else None
        assert got[i] == want, i
        tonal += want is not None
    assert 100 < tonal < len(p) - 100  # both kinds were tested


def test_feeding_together_equals_one_by_one_on_the_corpus(small_corpus) -> None:
    labels = read_labels(small_corpus)
    streams = [frames_of(read_wav_8k(small_corpus / lab["file"])) for lab in labels]
    got, dets = _together(streams, [AmdSettings()] * len(streams), seed=11)
    for i, payloads in enumerate(streams):
        want, alone = _one_by_one(payloads, AmdSettings())
        assert got[i] == want, labels[i]["file"]
        assert dets[i].finish() == alone.finish()


def _payloads(x: np.ndarray, size: int) -> list[bytes]:
    raw = pcm(x).tobytes()
    return [raw[i : i + size] for i in range(0, len(raw), size)]
