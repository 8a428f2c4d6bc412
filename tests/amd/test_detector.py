"""Puente's detector on synthetic signals: timing rules, beeps, tones, bad input, the caps."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.amd import (
    AmdDetector,
    AmdSettings,
    AmdSettingsError,
    AmdStatus,
    AmdVerdict,
    VoicemailCue,
)
from dialer.amd._tone import ToneAnalyser, ToneTracker
from tests.amd._signals import (
    SR,
    frames,
    join,
    noise,
    pcm,
    silence,
    tone,
    voice,
    vowel,
)

S = AmdSettings()


def run(x: np.ndarray, detector: AmdDetector | None = None, size: int = 320):
    """Feed ``x`` in payloads of ``size`` bytes; every event, in order, and the detector."""
    d = detector or AmdDetector()
    events = []
    for f in frames(x, size):
        ev = d.feed(f)
        if ev is not None:
            events.append(ev)
    return events, d


def verdict_of(events) -> AmdVerdict:
    verdicts = [e for e in events if isinstance(e, AmdVerdict)]
    assert len(verdicts) == 1, events
    return verdicts[0]


# -- the timing rules -----------------------------------------------------------------------
def test_a_short_answer_then_silence_is_human_soon_after_it_ends() -> None:
    x = join(silence(0.4), voice(0.6, seed=1), silence(3.0)) + noise(4.0, 30, seed=2)
    events, _ = run(x)
    v = verdict_of(events)
    assert v.status is AmdStatus.HUMAN
    assert re.fullmatch(rf"HUMAN-\d+-{S.after_greeting_silence_ms}", v.cause)
    end_of_speech_ms = 1000
    assert end_of_speech_ms + 500 <= v.decision_ms <= end_of_speech_ms + 700
    assert v.speech_onset_ms is not None
    assert 380 <= v.speech_onset_ms <= 480
    assert len(events) == 1  # no cue after HUMAN


def test_speech_that_goes_on_is_a_machine_within_the_cap() -> None:
    x = join(silence(0.3), voice(8.0, seed=3), silence(1.0))
    events, d = run(x)
    v = verdict_of(events)
    assert v.status is AmdStatus.MACHINE
    m = re.fullmatch(r"LONGGREETING-(\d+)-(\d+)", v.cause)
    assert m
    assert int(m.group(1)) >= int(m.group(2)) == S.greeting_ms
    assert v.decision_ms <= S.total_analysis_ms
    # The first syllable fades in: its onset is heard up to ~100 ms late.
    assert v.decision_ms == pytest.approx(300 + S.greeting_ms + 50, abs=100)
    # No beep follows: the cue is the end of the greeting.
    d.finish()
    assert d.cue is not None
    assert d.cue.reason == "SILENCE"
    assert d.cue.greeting_end_ms == pytest.approx(8300, abs=150)
    assert d.cue.cue_ms == pytest.approx(8300 + S.greeting_end_silence_ms, abs=150)


def test_after_a_long_utterance_the_pause_must_be_longer_to_be_human() -> None:
    # 2 s of speech, a pause a person would make after "¿Bueno?" but a recorded greeting
    # makes between sentences, then more speech: a machine, not a person.
    pause = (S.after_greeting_silence_ms + S.after_long_utterance_silence_ms) / 2000
    x = join(silence(0.3), voice(2.0, seed=28), silence(pause), voice(3.0, seed=29))
    v = verdict_of(run(join(x, silence(2.0)))[0])
    assert v.status is AmdStatus.MACHINE
    assert v.cause.startswith("LONGGREETING-")
    # The same pause after a short answer is a person's.
    x = join(silence(0.3), voice(0.6, seed=28), silence(pause), voice(3.0, seed=29))
    assert verdict_of(run(join(x, silence(2.0)))[0]).status is AmdStatus.HUMAN


def test_a_long_utterance_then_silence_is_human_after_the_longer_pause() -> None:
    x = join(silence(0.3), voice(2.0, seed=30), silence(3.0))
    v = verdict_of(run(x)[0])
    assert v.status is AmdStatus.HUMAN
    assert re.fullmatch(rf"HUMAN-\d+-{S.after_long_utterance_silence_ms}", v.cause)
    assert v.decision_ms == pytest.approx(2300 + S.after_long_utterance_silence_ms, abs=60)


def test_at_the_cap_a_long_utterance_that_has_ended_is_human_not_notsure() -> None:
    # Ends at 3.4 s: at the 4 s cap it has been quiet for a person's pause after a short
    # answer, not yet for the longer one a long utterance waits for.
    x = join(silence(1.2), voice(2.2, seed=33), silence(3.0))
    v = verdict_of(run(x)[0])
    assert v.status is AmdStatus.HUMAN
    assert v.decision_ms == S.total_analysis_ms
    assert re.fullmatch(rf"HUMAN-\d+-{S.after_greeting_silence_ms}", v.cause)


def test_silence_forever_is_notsure_at_the_initial_silence_limit() -> None:
    events, _ = run(silence(10.0))
    v = verdict_of(events)
    assert (v.status, v.cause, v.decision_ms) == (
        AmdStatus.NOTSURE,
        "INITIALSILENCE-2500-2500",
        2500,
    )


def test_initial_silence_can_be_called_a_machine_as_app_amd_does() -> None:
    d = AmdDetector(AmdSettings(initial_silence_status="MACHINE"))
    events, _ = run(noise(4.0, 20), d)
    assert verdict_of(events).status is AmdStatus.MACHINE
    assert verdict_of(events).cause == "INITIALSILENCE-2500-2500"


def test_line_noise_that_steps_up_mid_call_is_learnt_quickly() -> None:
    x = join(noise(1.0, 30, seed=22), noise(5.0, 600, seed=23))
    assert verdict_of(run(x)[0]).cause == "INITIALSILENCE-2500-2500"


def test_loud_steady_line_noise_is_not_speech() -> None:
    # mean |sample| ~ 1,600: app_amd's fixed gate (256) calls this a voice.
    events, _ = run(noise(6.0, 2000, seed=4))
    assert verdict_of(events).cause == "INITIALSILENCE-2500-2500"


def test_a_person_over_a_noisy_line_is_still_heard() -> None:
    x = join(noise(0.5, 500, seed=5), voice(0.7, seed=6, rms=2500) + noise(0.7, 500, seed=7))
    x = join(x, noise(3.0, 500, seed=8))
    v = verdict_of(run(x)[0])
    assert v.status is AmdStatus.HUMAN


def test_audio_that_never_stops_gets_a_verdict_and_a_cue_within_the_caps() -> None:
    d = AmdDetector()
    events, _ = run(voice(40.0, seed=9), d)
    v = verdict_of(events)
    assert v.status is AmdStatus.MACHINE
    assert v.decision_ms <= S.total_analysis_ms
    cues = [e for e in events if isinstance(e, VoicemailCue)]
    assert len(cues) == 1
    assert cues[0].reason == "TIMEOUT"
    assert cues[0].cue_ms == v.decision_ms + S.max_listen_ms
    assert d.done
    assert d.feed(bytes(320)) is None


def test_a_late_greeting_still_talking_at_the_cap_is_a_machine() -> None:
    x = join(silence(1.9), voice(6.0, seed=10))
    v = verdict_of(run(x)[0])
    assert v.status is AmdStatus.MACHINE
    assert v.decision_ms == S.total_analysis_ms
    assert v.cause.startswith("LONGGREETING-")
    assert v.cause.endswith(f"-{S.greeting_at_cap_ms}")


# -- beeps and tones ------------------------------------------------------------------------------
def test_a_greeting_then_a_beep_gives_machine_then_the_beep_cue() -> None:
    x = join(silence(0.5), voice(5.0, seed=11), silence(0.4), tone(1000, 0.5), silence(2.0))
    events, _ = run(x)
    assert [type(e) for e in events] == [AmdVerdict, VoicemailCue]
    v, cue = events
    assert v.status is AmdStatus.MACHINE
    assert v.cause.startswith("LONGGREETING-")
    assert cue.reason == "BEEP"
    assert cue.beep_ms == pytest.approx(5900, abs=20)
    assert cue.cue_ms == pytest.approx(6400, abs=20)
    assert cue.beep_hz == pytest.approx(1000, abs=5)
    assert cue.greeting_end_ms == pytest.approx(5500, abs=60)


def test_a_short_greeting_then_a_beep_is_a_machine_before_it_could_be_human() -> None:
    x = join(silence(0.3), voice(0.8, seed=12), silence(0.35), tone(850, 0.4), silence(2.0))
    events, _ = run(x)
    v = verdict_of(events)
    assert v.status is AmdStatus.MACHINE
    assert re.fullmatch(r"BEEP-\d+-85\d", v.cause)
    assert v.beep_ms == pytest.approx(1450, abs=20)
    assert isinstance(events[-1], VoicemailCue)
    assert events[-1].reason == "BEEP"


@pytest.mark.parametrize("offset_ms", [0, 3, 7, 11, 15, 19])
def test_a_100_ms_beep_is_found_at_any_phase_of_the_frames(offset_ms: int) -> None:
    x = join(silence(0.3), voice(0.8, seed=13), silence(0.3 + offset_ms / 1000))
    x = join(x, tone(1400, 0.1, ramp_ms=2), silence(2.0))
    v = verdict_of(run(x)[0])
    assert v.status is AmdStatus.MACHINE, v
    assert v.beep_ms == pytest.approx(1400 + offset_ms, abs=20)


@pytest.mark.parametrize(("pause_s", "is_beep"), [(0.0, False), (0.3, True)])
def test_a_tone_inside_a_word_is_not_a_beep(pause_s: float, is_beep: bool) -> None:
    word = np.trim_zeros(voice(1.0, seed=24), "b")
    x = join(silence(0.3), word, silence(pause_s), tone(450, 0.15, rms=2500, ramp_ms=0))
    v = verdict_of(run(join(x, silence(0.3), voice(0.4, seed=25), silence(3.0)))[0])
    assert (v.beep_ms is not None) is is_beep
    assert v.status is (AmdStatus.MACHINE if is_beep else AmdStatus.HUMAN)


@pytest.mark.parametrize(
    ("hz", "after", "is_beep"),
    [
        (450, "voice", False),  # a held vowel at a voice's pitch: the voice goes on
        (450, "quiet", True),
        (1000, "voice", True),  # above any voice's pitch: a beep as soon as it is steady
    ],
)
def test_a_short_tone_at_a_voices_pitch_is_a_beep_only_if_quiet_follows(
    hz: int, after: str, is_beep: bool
) -> None:
    rest = voice(0.4, seed=25) if after == "voice" else silence(0.4)
    x = join(silence(0.3), voice(0.8, seed=26), silence(0.3), tone(hz, 0.15, ramp_ms=0))
    events, _ = run(join(x, rest, silence(3.0)))
    v = verdict_of(events)
    assert (v.beep_ms is not None) is is_beep, v
    if is_beep:
        assert v.status is AmdStatus.MACHINE
        assert v.beep_ms == pytest.approx(1400, abs=20)
        if hz < S.voice_max_hz:  # heard out: decided once the quiet after it is
            assert v.decision_ms >= 1550 + S.beep_quiet_after_ms - 20
            assert isinstance(events[-1], VoicemailCue)
            assert events[-1].cue_ms == pytest.approx(1550, abs=20)
        else:
            assert v.decision_ms < 1550
    else:
        assert v.status is AmdStatus.HUMAN


def test_a_long_beep_at_a_voices_pitch_is_taken_before_it_ends() -> None:
    x = join(silence(0.3), voice(0.8, seed=27), silence(0.3), tone(440, 0.8), silence(2.0))
    events, _ = run(x)
    v = verdict_of(events)
    assert v.status is AmdStatus.MACHINE
    assert v.beep_ms == pytest.approx(1400, abs=20)
    assert v.decision_ms == pytest.approx(1400 + S.low_beep_ms, abs=40)
    assert events[-1].reason == "BEEP"
    assert events[-1].cue_ms == pytest.approx(2200, abs=20)


def test_a_tone_right_after_a_burst_too_short_for_an_onset_is_not_a_beep() -> None:
    # The burst is speech all the same: the tone came with no pause before it.
    x = join(silence(0.5), voice(0.1, seed=31), tone(1000, 0.15, rms=2500, ramp_ms=0))
    v = verdict_of(run(join(x, voice(0.5, seed=32), silence(3.0)))[0])
    assert v.beep_ms is None
    assert v.status is AmdStatus.HUMAN


def test_a_60_ms_blip_is_not_a_beep() -> None:
    x = join(silence(0.3), voice(0.8, seed=13), silence(0.3), tone(1400, 0.06), silence(2.0))
    assert verdict_of(run(x)[0]).status is AmdStatus.HUMAN


@pytest.mark.parametrize(
    ("signal", "name"),
    [
        (vowel(1.0, f0=200), "steady vowel"),
        (vowel(1.0, f0=120), "low steady vowel"),
        (vowel(1.0, f0=220, vibrato_hz=5.5), "vowel with vibrato"),
        (vowel(1.0, f0=190, weights=[0.3, 1.0, 0.35, 0.2, 0.1]), "vowel with one strong harmonic"),
    ],
)
def test_a_sustained_vowel_is_not_a_beep(signal: np.ndarray, name: str) -> None:
    x = join(silence(0.3), voice(0.6, seed=14), signal, silence(3.0))
    events, d = run(x)
    v = verdict_of(events)
    assert not v.cause.startswith("BEEP"), name
    assert v.beep_ms is None, name
    d.finish()
    assert d.cue is None or d.cue.beep_ms is None, name


def test_the_tone_test_tells_a_pure_tone_from_a_vowel() -> None:
    analyser = ToneAnalyser(S)
    x = tone(1000, 0.04, ramp_ms=0)
    frame = analyser.analyse(analyser.spectrum(x), 70.0)
    assert analyser.is_tonal(frame)
    assert frame.hz == pytest.approx(1000, abs=3)
    assert frame.purity > 0.95
    v = analyser.analyse(analyser.spectrum(vowel(0.04, f0=150)), 70.0)
    assert not analyser.is_tonal(v)


def test_a_tone_steady_in_pitch_but_not_in_level_is_not_steady() -> None:
    tracker = ToneTracker(S)
    analyser = ToneAnalyser(S)
    t = np.arange(round(0.4 * SR)) / SR
    x = tone(700, 0.4, ramp_ms=0) * 10 ** (-200 * t / 20)  # a swell: 20 dB per 100 ms
    window = np.zeros(320)
    seen = []
    for i in range(0, len(x) - 160, 160):
        window = np.concatenate([window[160:], x[i : i + 160]])
        level = 10 * np.log10((x[i : i + 160] ** 2).mean() + 1)
        frame = analyser.analyse(analyser.spectrum(window), level)
        tracker.push(i // 8 - 20, i // 8 + 20, frame if analyser.is_tonal(frame) else None)
        if tracker.current is not None:
            seen.append(tracker.current.steady)
    assert seen
    assert not any(seen)


@pytest.mark.parametrize(
    ("x", "kind", "hz"),
    [
        (join(silence(0.4), tone(2100, 3.0), silence(2.0)), "FAX", 2100),
        (join(silence(0.7), tone(1100, 0.5), silence(3.0)), "FAX", 1100),
        (
            join(silence(0.2), tone(913.8, 0.274), tone(1370.6, 0.274), tone(1776.7, 0.38)),
            "SIT-IC",  # the kind from its three segments (tests/amd/test_sit.py)
            914,
        ),
        (join(silence(0.2), tone(600, 0.5), silence(3.0)), "TONE", 600),
    ],
)
def test_tones_before_any_speech_are_machines_named_by_frequency(
    x: np.ndarray, kind: str, hz: int
) -> None:
    events, d = run(join(x, voice(2.0, seed=15)))
    v = verdict_of(events)
    assert v.status is AmdStatus.MACHINE
    m = re.fullmatch(rf"{kind}-(\d+)-(\d+)", v.cause)
    assert m, v.cause
    assert int(m.group(1)) == pytest.approx(hz, abs=6)
    assert int(m.group(2)) >= S.pre_speech_tone_ms - 10  # edges measured within 10 ms
    assert v.decision_ms <= 1200
    if kind.startswith(("FAX", "SIT")):
        assert d.done
        assert len(events) == 1


def test_a_beep_through_a_lost_packet_is_still_one_beep() -> None:
    x = join(silence(0.3), voice(5.0, seed=16), silence(0.5), tone(1000, 0.6), silence(1.5))
    raw = pcm(x)
    lost_at = (5800 + 200) * 8  # 200 ms into the beep
    raw[lost_at : lost_at + 160] = 0
    events, _ = run(raw.astype(float))
    cue = events[-1]
    assert isinstance(cue, VoicemailCue)
    assert cue.reason == "BEEP"
    assert cue.beep_ms == pytest.approx(5800, abs=20)
    assert cue.cue_ms == pytest.approx(6400, abs=25)


# -- payloads: sizes, faults, time ----------------------------------------------------------------
CALL = join(silence(0.3), voice(0.9, seed=17), silence(0.3), tone(1200, 0.3), silence(1.0))


def _all_events(payloads: list[bytes]) -> list:
    d = AmdDetector()
    out = []
    for p in payloads:
        ev = d.feed(p)
        if ev is not None:
            out.append(ev)
    d.finish()
    return [*out, d.verdict, d.cue]


REFERENCE = _all_events(frames(CALL, 320))


def test_30_ms_frames_give_the_same_events_as_20_ms_frames() -> None:
    assert REFERENCE[0].status is AmdStatus.MACHINE
    assert _all_events(frames(CALL, 480)) == REFERENCE
    assert _all_events(frames(CALL, 960)) == REFERENCE


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=480), min_size=1, max_size=50))
def test_any_split_into_even_payloads_gives_the_same_events(cuts: list[int]) -> None:
    raw = pcm(CALL).tobytes()
    payloads, pos, i = [], 0, 0
    while pos < len(raw):
        size = 2 * cuts[i % len(cuts)]
        payloads.append(raw[pos : pos + size])
        pos += size
        i += 1
    assert _all_events(payloads) == REFERENCE


@pytest.mark.parametrize(("size", "cause"), [(321, "BADFRAME-321"), (1000, "BADFRAME-1000")])
def test_a_bad_payload_is_notsure_with_a_cause_not_an_exception(size: int, cause: str) -> None:
    d = AmdDetector()
    assert d.feed(bytes(320)) is None
    v = d.feed(bytes(size))
    assert isinstance(v, AmdVerdict)
    assert (v.status, v.cause, v.decision_ms) == (AmdStatus.NOTSURE, cause, 20)
    assert d.done
    assert d.feed(bytes(320)) is None
    assert d.verdict is v


def test_a_bad_payload_while_listening_for_the_beep_ends_with_a_fault_cue() -> None:
    d = AmdDetector()
    events, _ = run(join(silence(0.2), voice(4.0, seed=18)), d)
    assert verdict_of(events).status is AmdStatus.MACHINE
    assert not d.done
    cue = d.feed(b"\x00" * 7)
    assert isinstance(cue, VoicemailCue)
    assert cue.reason == "FAULT"
    assert d.done


def test_stalled_audio_is_notsure_when_the_callers_clock_passes_the_cap() -> None:
    d = AmdDetector()
    for i, f in enumerate(frames(silence(0.5))):
        assert d.feed(f, elapsed_ms=20 * (i + 1)) is None
    assert d.tick(3000) is None  # the initial-silence rule counts audio, not wall time
    v = d.tick(S.total_analysis_ms)
    assert isinstance(v, AmdVerdict)
    assert (v.status, v.cause, v.decision_ms) == (AmdStatus.NOTSURE, "TOOLONG-4000", 500)
    assert d.tick(9000) is None


def test_hangup_before_a_verdict_is_hangup() -> None:
    d = AmdDetector()
    run(voice(0.5, seed=19), d)
    v = d.hangup()
    assert (v.status, v.cause) == (AmdStatus.HANGUP, "")
    assert d.done
    assert d.feed(bytes(320)) is None


def test_finish_decides_a_recording_that_ends_early_as_if_silence_followed() -> None:
    d = AmdDetector()
    run(join(silence(0.2), voice(0.5, seed=20)), d)
    assert d.verdict is None
    v = d.finish()
    assert v.status is AmdStatus.HUMAN
    assert v.decision_ms == pytest.approx(700 + S.after_greeting_silence_ms, abs=60)


def test_the_verdict_is_handed_out_once() -> None:
    d = AmdDetector()
    out = [d.feed(f) for f in frames(join(silence(0.3), voice(0.6, seed=21), silence(3.0)))]
    assert sum(isinstance(e, AmdVerdict) for e in out) == 1
    assert all(e is None or isinstance(e, AmdVerdict) for e in out)


# -- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"greeting_ms": 0}, "greeting_ms"),
        ({"after_long_utterance_silence_ms": 500}, "after_long_utterance_silence_ms"),
        ({"vad_mode": 4}, "vad_mode"),
        ({"initial_silence_status": "HUMAN"}, "initial_silence_status"),
        ({"beep_low_hz": 3000}, "beep band"),
        ({"max_frame_bytes": 961}, "max_frame_bytes"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict, named: str) -> None:
    with pytest.raises(AmdSettingsError, match=named):
        AmdSettings(**kwargs)


def test_settings_from_strings() -> None:
    s = AmdSettings.from_mapping({"greeting_ms": "3000", "speech-margin-db": "5.5"})
    assert (s.greeting_ms, s.speech_margin_db) == (3000, 5.5)
    with pytest.raises(AmdSettingsError, match="greeting_ms"):
        AmdSettings.from_mapping({"greeting_ms": "long"})
    with pytest.raises(AmdSettingsError, match="unknown AMD setting 'greting_ms'"):
        AmdSettings.from_mapping({"greting_ms": "3000"})
    # float() took nan and inf, int() "1_0" and other digits; a key that is not a name raised
    # AttributeError.
    bad_values = (
        ("speech_margin_db", "nan"),
        ("floor_rise_db_per_s", "inf"),
        ("tone_max_spread_hz", "1e999"),
        ("greeting_ms", "1_0"),
        ("greeting_ms", "\uff13\uff10\uff10\uff10"),
        ("greeting_ms", "9" * 4301),
    )
    for key, raw in bad_values:
        with pytest.raises(AmdSettingsError, match=f"AMD setting {key} has a bad value"):
            AmdSettings.from_mapping({key: raw})
    with pytest.raises(AmdSettingsError, match="unknown AMD setting 1"):
        AmdSettings.from_mapping({1: 2})  # type: ignore[dict-item]
