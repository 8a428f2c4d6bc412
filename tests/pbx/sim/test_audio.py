"""Synthetic callee audio: deterministic, framed like Asterisk, levels that make sense."""

from __future__ import annotations

import dataclasses

import numpy as np

from pbx.sim._audio import FRAME_BYTES, frames, render, rms, sounding_frames, timeline
from pbx.sim._callees import DEFAULT_MODEL
from pbx.sim._server import leg_audio


def test_render_is_deterministic_and_levels_are_plausible() -> None:
    segs = [("silence", 0.5), ("speech", 1.0), ("beep", 0.2)]
    a, b = render(segs, seed=7), render(segs, seed=7)
    assert a == b
    assert render(segs, seed=8) != a
    assert len(a) == int(1.7 * 8000) * 2
    silence, speech, beep = a[:8000], a[8000 : 8000 + 16000], a[-3200:]
    assert rms(silence) < 60
    assert 500 < rms(speech) < 8000
    assert 5000 < rms(beep) < 6000  # 8000/sqrt(2) tone
    spectrum = np.abs(np.fft.rfft(np.frombuffer(beep, "<i2")))
    assert abs(np.argmax(spectrum) * 8000 / 1600 - 1000) < 10


def test_frames_are_20ms_with_a_short_last_frame() -> None:
    pcm = render([("speech", 0.05)], seed=1)  # 400 samples = 800 bytes
    sizes = [len(f) for f in frames(pcm)]
    assert sizes == [FRAME_BYTES, FRAME_BYTES, 160]


def test_timelines_by_outcome() -> None:
    human = next(
        f for i in range(200) if (f := DEFAULT_MODEL.fate(f"+1{i}", "a")).outcome == "human"
    )
    machine = next(
        f
        for i in range(500)
        if (f := DEFAULT_MODEL.fate(f"+1{i}", "a")).outcome == "machine" and f.beep
    )
    assert [k for k, _ in timeline(human)] == ["silence", "speech", "silence"]
    kinds = [k for k, _ in timeline(machine)]
    assert "beep" in kinds
    assert kinds.index("beep") > kinds.index("speech")
    speech_s = sum(s for k, s in timeline(machine) if k == "speech")
    assert 3.0 <= speech_s <= 10.0


def test_a_fax_sends_cng_and_a_ten_second_greeting_keeps_its_beep() -> None:
    fax = next(f for i in range(500) if (f := DEFAULT_MODEL.fate(f"+1{i}", "a")).outcome == "fax")
    tones = render(timeline(fax)[:1], seed=1)
    spectrum = np.abs(np.fft.rfft(np.frombuffer(tones, "<i2")))
    assert abs(np.argmax(spectrum) * 8000 / (len(tones) // 2) - 1100) < 10  # CNG
    machine = next(
        f
        for i in range(500)
        if (f := DEFAULT_MODEL.fate(f"+1{i}", "a")).outcome == "machine" and f.beep
    )
    longest = dataclasses.replace(machine, greeting_s=10.0)
    pcm = np.frombuffer(leg_audio(longest, seed=1), "<i2")
    kinds = [k for k, _ in timeline(longest)]
    beep_at = sum(s for _, s in timeline(longest)[: kinds.index("beep")])
    assert beep_at > 10.0  # past the usual 10 s head...
    beep = pcm[int(beep_at * 8000) + 80 : int((beep_at + 0.5) * 8000) - 80]
    assert 5000 < rms(beep.tobytes()) < 6000  # ...and still there


def test_sounding_frames_mark_the_far_ends_sounds_not_its_silences() -> None:
    segs = [("silence", 0.3), ("speech", 0.5), ("silence", 0.11), ("beep", 0.1), ("silence", 1.0)]
    sounding = sounding_frames(segs)
    assert len(sounding) == len(list(frames(render(segs, seed=1))))
    # 0.3 s of silence = 15 frames, the speech's 25, then 880 samples of gap: frames 40-44
    # are silent and frame 45 starts the beep (a frame with any sound in it sounds), whose
    # 800 samples end inside frame 50; then silence.
    assert sounding[:15] == [False] * 15
    assert sounding[15:40] == [True] * 25
    assert sounding[40:45] == [False] * 5
    assert sounding[45:51] == [True] * 6
    assert not any(sounding[51:])
