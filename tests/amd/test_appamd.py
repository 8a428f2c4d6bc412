"""The app_amd baseline on crafted energy patterns, against app_amd.c and the recorded runs."""

from __future__ import annotations

import numpy as np
import pytest

from dialer.amd import AmdDetector, AmdStatus, AmdVerdict, AppAmdDetector, AppAmdSettings
from tests.amd._signals import constant_frames, frames, noise

QUIET = 100  # mean |sample| below the 256 threshold: silence to ast_dsp_silence
LOUD = 2000  # a voice to it


def feed_all(d: AppAmdDetector, payloads: list[bytes], **kw: int) -> AmdVerdict | None:
    for p in payloads:
        v = d.feed(p, **kw)
        if v is not None:
            assert isinstance(v, AmdVerdict)
            return v
    return None


def pattern(*runs: tuple[int, int], size: int = 320) -> list[bytes]:
    """(mean |sample|, milliseconds) runs as frames of ``size`` bytes."""
    out: list[bytes] = []
    for level, ms in runs:
        out += constant_frames(level, ms * 16 // size, size)
    return out


def test_silence_is_initialsilence_at_2500_as_recorded() -> None:
    v = feed_all(AppAmdDetector(), pattern((QUIET, 10_000)))
    assert v is not None
    assert (v.status, v.cause, v.decision_ms) == (
        AmdStatus.MACHINE,
        "INITIALSILENCE-2500-2500",
        2500,
    )


def test_continuous_voice_is_longgreeting_1500_as_recorded() -> None:
    # No silence ever: app_amd's state starts IN_WORD, so no word is counted, and the first
    # 100 ms of voice opens the greeting; 1500 ms of voice ends it.
    v = feed_all(AppAmdDetector(), pattern((LOUD, 10_000)))
    assert v is not None
    assert (v.status, v.cause, v.decision_ms) == (
        AmdStatus.MACHINE,
        "LONGGREETING-1500-1500",
        1500,
    )


def test_a_short_final_frame_gives_human_801_as_recorded() -> None:
    # hello-world then silence: the playback's last frame was 12 samples (1 ms).
    payloads = pattern((QUIET, 300), (LOUD, 1000))
    payloads.append(constant_frames(QUIET, 1, 24)[0])
    payloads += pattern((QUIET, 2000))
    v = feed_all(AppAmdDetector(), payloads)
    assert v is not None
    assert (v.status, v.cause, v.decision_ms) == (AmdStatus.HUMAN, "HUMAN-801-800", 2101)


def test_a_third_word_is_maxwords_with_the_sample_config() -> None:
    runs = [(QUIET, 100)]
    for _ in range(3):
        runs += [(LOUD, 120), (QUIET, 60)]
    v = feed_all(AppAmdDetector(), pattern(*runs, (QUIET, 3000)))
    assert v is not None
    assert (v.status, v.cause) == (AmdStatus.MACHINE, "MAXWORDS-3-2")
    assert v.decision_ms == 100 + 2 * 180 + 100  # the third word counts at 100 ms of voice


def test_hello_who_is_this_is_called_a_machine_by_the_word_rule() -> None:
    # The complaint: a person's "Hello, who is this?" (four short words).
    runs = [(QUIET, 500)]
    for ms in (300, 150, 120, 250):
        runs += [(LOUD, ms), (QUIET, 80)]
    v = feed_all(AppAmdDetector(), pattern(*runs, (QUIET, 3000)))
    assert v is not None
    assert v.status is AmdStatus.MACHINE
    assert v.cause.startswith("MAXWORDS-")


def test_voice_that_never_makes_a_word_runs_to_toolong() -> None:
    v = feed_all(AppAmdDetector(), pattern(*[(LOUD, 40), (QUIET, 60)] * 60))
    assert v is not None
    assert (v.status, v.cause, v.decision_ms) == (AmdStatus.NOTSURE, "TOOLONG-5000", 5000)


def test_the_silence_threshold_is_mean_absolute_value_below_256() -> None:
    at = feed_all(AppAmdDetector(), pattern((256, 3000)))
    below = feed_all(AppAmdDetector(), pattern((255, 3000)))
    assert at is not None
    assert at.cause == "LONGGREETING-1500-1500"
    assert below is not None
    assert below.cause == "INITIALSILENCE-2500-2500"


def test_line_noise_over_the_fixed_gate_is_a_voice_to_app_amd_but_not_to_puente() -> None:
    x = noise(6.0, 600, seed=3)  # mean |sample| ~ 480
    base = feed_all(AppAmdDetector(), frames(x))
    assert base is not None
    assert base.cause == "LONGGREETING-1500-1500"
    puente = AmdDetector()
    verdicts = [e for f in frames(x) if isinstance(e := puente.feed(f), AmdVerdict)]
    assert [v.cause for v in verdicts] == ["INITIALSILENCE-2500-2500"]


def test_30_ms_frames_count_30_ms_each() -> None:
    v = feed_all(AppAmdDetector(), pattern((QUIET, 4000), size=480))
    assert v is not None
    assert v.cause == "INITIALSILENCE-2520-2500"  # 84 frames of 30 ms


def test_the_wall_clock_cap_gives_toolong_or_noaudiodata() -> None:
    d = AppAmdDetector()
    assert d.tick(5000) is None  # app_amd's test is "more than" the total
    v = d.tick(5001)
    assert v is not None
    assert (v.status, v.cause) == (AmdStatus.NOTSURE, "NOAUDIODATA-0")
    d = AppAmdDetector()
    feed_all(d, pattern((LOUD, 60)))
    v = d.feed(constant_frames(LOUD, 1)[0], elapsed_ms=5001)
    assert v is not None
    assert (v.status, v.cause) == (AmdStatus.NOTSURE, "TOOLONG-60")


def test_hangup_and_bad_payloads() -> None:
    d = AppAmdDetector()
    feed_all(d, pattern((QUIET, 200)))
    assert (d.hangup().status, d.hangup().cause) == (AmdStatus.HANGUP, "")
    d = AppAmdDetector()
    v = d.feed(b"\x00" * 33)
    assert v is not None
    assert (v.status, v.cause) == (AmdStatus.NOTSURE, "BADFRAME-33")
    assert d.feed(bytes(320)) is None


def test_finish_runs_silence_to_a_decision() -> None:
    d = AppAmdDetector()
    feed_all(d, pattern((QUIET, 300), (LOUD, 400)))
    v = d.finish()
    assert (v.status, v.cause, v.decision_ms) == (AmdStatus.HUMAN, "HUMAN-800-800", 1500)


AMD_CONF = """\
; defaults from amd.conf.sample
[general]
initial_silence = 2500
greeting = 1500
after_greeting_silence = 800
total_analysis_time = 5000
min_word_length = 100
between_words_silence = 50
maximum_number_of_words = 2
silence_threshold = 256
maximum_word_length = 5000
playback_file => beep

[other]
greeting = 1
"""


def test_amd_conf_is_read_and_its_defaults_are_ours() -> None:
    assert AppAmdSettings.from_amd_conf(AMD_CONF) == AppAmdSettings()
    custom = AppAmdSettings.from_amd_conf("[general]\ngreeting => 2000 ; longer\n")
    assert custom.greeting == 2000
    assert custom.max_wait_for_frame_ms == 50


@pytest.mark.parametrize("bad", ["[general]\ngreeting = soon\n", "[general]\nfoo = 1\n"])
def test_bad_amd_conf_values_are_named(bad: str) -> None:
    from dialer.amd import AmdSettingsError

    with pytest.raises(AmdSettingsError, match=r"greeting|foo"):
        AppAmdSettings.from_amd_conf(bad)


def test_frames_are_analysed_as_delivered() -> None:
    # A 10 ms frame counts 10 ms: app_amd does not re-block.
    d = AppAmdDetector()
    feed_all(d, [np.zeros(80, dtype="<i2").tobytes()] * 3)
    assert d.now_ms == 30
