"""Special information tones: which SIT (a dead number, a congested network) a call opened on."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dialer.amd import (
    SIT_KIND_NAMES,
    AmdDetector,
    AmdSettings,
    AmdStatus,
    AmdVerdict,
    feed_batch,
    read_labels,
    read_wav_8k,
    run_detector,
    sit_kind_of_cause,
)
from dialer.amd._eval import score
from dialer.amd._tone import SIT_KINDS
from tests.amd._signals import SR, frames, join, noise, pcm, silence, tone, voice, vowel

S = AmdSettings()
_HZ = {"1L": 913.8, "1H": 985.2, "2L": 1370.6, "2H": 1428.5}
#: Telcordia GR-1162 / ANSI T1.401 as every vendor table gives it (see dialer/amd/_tone.py).
TABLE = [
    ("L274", "L274", "IC"),
    ("H380", "L274", "VC"),
    ("H380", "H380", "NC"),
    ("L380", "L380", "NC"),
    ("L274", "H380", "RO"),
    ("H274", "L380", "RO"),
    ("L380", "H274", "IO"),
]
LEAD_S = 0.3


def sit(first: str, second: str, rms: float = 2000.0, third_s: float = 0.38) -> np.ndarray:
    """The three segments, back to back: ``first``/``second`` as ``L274``, ``H380``..."""
    return join(
        tone(_HZ["1" + first[0]], int(first[1:]) / 1000, rms),
        tone(_HZ["2" + second[0]], int(second[1:]) / 1000, rms),
        tone(1776.7, third_s, rms),
    )


def call(first: str, second: str) -> np.ndarray:
    """A call that opens on the SIT, then the carrier's announcement."""
    return join(silence(LEAD_S), sit(first, second), silence(0.2), voice(2.5, seed=3), silence(1))


def run(x: np.ndarray, settings: AmdSettings = S) -> tuple[AmdVerdict, AmdDetector, list]:
    d = AmdDetector(settings)
    events = []
    for f in frames(x):
        ev = d.feed(f)
        if ev is not None:
            events.append(ev)
        if d.done:
            break
    verdict = d.finish()
    return verdict, d, events


def ulaw(x: np.ndarray) -> np.ndarray:
    """A G.711 mu-law round trip (the segment coding of the Sun reference ``g711.c``)."""
    s = pcm(x).astype(np.int32)
    sign = s < 0
    mag = np.minimum(np.abs(s), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    out = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -out, out).astype(float)


def assert_sit(v: AmdVerdict, kind: str, first: str | None = None) -> tuple[int, int]:
    """``v`` is MACHINE ``SIT-<kind>-<hz>-<ms>``; the first segment's hz and ms."""
    assert v.status is AmdStatus.MACHINE, v
    m = re.fullmatch(r"SIT-([A-Z]+)-(\d+)-(\d+)", v.cause)
    assert m, v.cause
    assert m.group(1) == kind, v.cause
    hz, ms = int(m.group(2)), int(m.group(3))
    if first is not None:
        assert hz == pytest.approx(_HZ["1" + first[0]], abs=3)
        assert ms == pytest.approx(int(first[1:]), abs=12)  # edges within 10 ms each
    return hz, ms


# -- each kind, on clean and bad lines --------------------------------------------------------
@pytest.mark.parametrize(("first", "second", "kind"), TABLE)
def test_each_sit_is_told_by_its_segments(first: str, second: str, kind: str) -> None:
    v, d, events = run(call(first, second))
    assert_sit(v, kind, first)
    assert sit_kind_of_cause(v.cause) == kind
    # Decided by the end of the third segment, within the bound, and nothing after it.
    onset_ms = LEAD_S * 1000
    third_end_ms = onset_ms + int(first[1:]) + int(second[1:]) + 380
    assert v.decision_ms <= third_end_ms + 20
    assert v.decision_ms <= onset_ms + S.sit_max_ms
    assert v.beep_ms == pytest.approx(onset_ms, abs=10)
    assert events == [v]
    assert d.done
    assert d.cue is None


@pytest.mark.parametrize(("first", "second", "kind"), TABLE)
def test_a_sit_through_noise_and_mu_law_is_still_told(first: str, second: str, kind: str) -> None:
    x = call(first, second)
    # Line noise 20 dB under the tones (not digital silence before them), then G.711.
    x = ulaw(x + noise(len(x) / SR, 200, seed=len(first + second) + ord(kind[0])))
    assert_sit(run(x)[0], kind, first)


@pytest.mark.parametrize(("first", "second", "kind"), TABLE)
@pytest.mark.parametrize(("segment", "into_ms"), [(0, 150), (1, 0), (1, 60), (2, 100)])
def test_a_lost_frame_in_any_segment_does_not_change_the_kind(
    first: str, second: str, kind: str, segment: int, into_ms: int
) -> None:
    """One 20 ms frame zeroed ``into_ms`` into a segment (0: where it starts)."""
    raw = pcm(call(first, second))
    starts_ms = [0, int(first[1:]), int(first[1:]) + int(second[1:])]
    at = round((LEAD_S * 1000 + starts_ms[segment] + into_ms) * SR / 1000)
    block = at // 160 * 160  # a whole frame, as a lost packet is
    raw[block : block + 160] = 0
    assert_sit(run(raw.astype(float))[0], kind)


def test_batch_feeding_gives_the_same_sit_verdicts() -> None:
    calls = [call(a, b) for a, b, _ in TABLE]
    streams = [frames(x) for x in calls]
    events = feed_batch([(AmdDetector(), s) for s in streams])
    alone = [run(x)[0] for x in calls]
    together = [ev for _, ev in events if isinstance(ev, AmdVerdict)]
    assert [v.cause for v in together] == [v.cause for v in alone]
    assert [v.decision_ms for v in together] == [v.decision_ms for v in alone]
    assert [sit_kind_of_cause(v.cause) for v in together] == [k for _, _, k in TABLE]


# -- what cannot be told is UNK, within the bound ---------------------------------------------
def test_a_sit_frequency_tone_alone_is_sit_unk_soon_after_it_ends() -> None:
    x = join(silence(LEAD_S), tone(913.8, 0.38), silence(0.2), voice(2.5, seed=4), silence(1))
    v, d, _ = run(x)
    assert_sit(v, "UNK", "L380")
    assert v.decision_ms <= LEAD_S * 1000 + 380 + 150
    assert d.done


def test_a_long_tone_at_a_sit_frequency_is_sit_unk_within_the_bound() -> None:
    x = join(silence(LEAD_S), tone(985.2, 2.0), silence(2.0))
    v, _, _ = run(x)
    assert_sit(v, "UNK")
    # Too long for a segment: no need to wait for the bound.
    assert v.decision_ms <= LEAD_S * 1000 + 500
    assert v.decision_ms <= LEAD_S * 1000 + S.sit_max_ms


@pytest.mark.parametrize(
    "x",
    [
        # No third segment.
        join(tone(913.8, 0.274), tone(1370.6, 0.274), silence(2.0)),
        # The third segment cut short (a 60 ms stub, then silence).
        join(tone(913.8, 0.274), tone(1370.6, 0.274), tone(1776.7, 0.06), silence(2.0)),
        # A segment of neither length (320-340 ms is between short and long)...
        join(tone(985.2, 0.33), tone(1370.6, 0.274), tone(1776.7, 0.38), silence(2.0)),
        # ...or too short.
        join(tone(985.2, 0.38), tone(1370.6, 0.16), tone(1776.7, 0.38), silence(2.0)),
        # Out of order: the second segment's tone first.
        join(tone(1428.5, 0.38), tone(985.2, 0.38), tone(1776.7, 0.38), silence(2.0)),
        # The second segment missing: the third follows the first.
        join(tone(913.8, 0.38), tone(1776.7, 0.38), silence(2.0)),
        # Halfway between the two first-segment tones: neither.
        join(tone(949.5, 0.38), tone(1370.6, 0.38), tone(1776.7, 0.38), silence(2.0)),
        # A combination the table leaves unassigned (high-short, high-short).
        sit("H274", "H274"),
        sit("L274", "L380"),
    ],
)
def test_segments_that_cannot_be_resolved_are_sit_unk(x: np.ndarray) -> None:
    v, _, _ = run(join(silence(LEAD_S), x, silence(3.0)))
    assert_sit(v, "UNK")
    assert v.decision_ms <= LEAD_S * 1000 + S.sit_max_ms


def test_the_wait_is_bounded_by_sit_max_ms() -> None:
    # Long gaps between the segments (80 ms each): the third is confirmed too late.
    x = join(tone(985.2, 0.38), silence(0.08), tone(1428.5, 0.38), silence(0.08), tone(1776.7, 1))
    settings = AmdSettings(sit_max_ms=900)
    v, _, _ = run(join(silence(LEAD_S), x, silence(2.0)), settings)
    assert_sit(v, "UNK")
    assert v.decision_ms == pytest.approx(LEAD_S * 1000 + 900, abs=20)
    # With the default bound the same SIT is told.
    assert_sit(run(join(silence(LEAD_S), x, silence(2.0)))[0], "NC")


def test_the_wait_never_passes_the_hard_cap() -> None:
    settings = AmdSettings(total_analysis_ms=1200, initial_silence_ms=1000)
    v, _, _ = run(call("L380", "L380"), settings)  # the third segment confirmed at ~1.2 s
    assert v.decision_ms <= 1200
    assert v.cause.startswith("SIT-")
    # The caller's clock too: audio stalls mid-SIT.
    d = AmdDetector()
    x = join(silence(LEAD_S), sit("L380", "L380"))
    for f in frames(x[: int(0.9 * SR)]):
        assert d.feed(f) is None
    ev = d.tick(S.total_analysis_ms)
    assert isinstance(ev, AmdVerdict)
    assert_sit(ev, "UNK", "L380")


def test_a_hang_up_while_the_sit_plays_is_still_a_sit() -> None:
    d = AmdDetector()
    for f in frames(join(silence(LEAD_S), tone(913.8, 0.274), tone(1370.6, 0.1))):
        assert d.feed(f) is None
    v = d.hangup()
    assert_sit(v, "UNK", "L274")


# -- not a SIT ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "x",
    [
        # A held vowel whose second harmonic sits on 913.8 Hz, then words.
        join(silence(0.3), vowel(1.5, f0=456.9), voice(2.0, seed=5), silence(2.0)),
        join(silence(0.3), vowel(1.5, f0=180, vibrato_hz=5), silence(2.0)),
        # A greeting, then a 1 kHz beep (near 985.2 Hz), a 1400 Hz one, three rising beeps.
        join(silence(0.3), voice(3.0, seed=6), silence(0.4), tone(1000, 0.5), silence(2.0)),
        join(silence(0.3), voice(3.0, seed=7), silence(0.4), tone(1400, 0.4), silence(2.0)),
        join(silence(0.3), voice(3.0, seed=8), silence(0.4), sit("L274", "L274"), silence(2.0)),
        # A beep before any speech, away from the SIT's tones.
        join(silence(0.3), tone(600, 0.5), silence(3.0)),
    ],
)
def test_vowels_and_beeps_do_not_become_sits(x: np.ndarray) -> None:
    v, _, _ = run(x)
    assert not v.cause.startswith("SIT"), v.cause
    assert sit_kind_of_cause(v.cause) is None


# -- the helper, the labels, the evaluation -----------------------------------------------------
@pytest.mark.parametrize(
    ("cause", "kind"),
    [
        ("SIT-IC-914-272", "IC"),
        ("SIT-VC-985-372", "VC"),
        ("SIT-NC-914-380", "NC"),
        ("SIT-RO-985-274", "RO"),
        ("SIT-IO-914-380", "IO"),
        ("SIT-UNK-914-380", "UNK"),
        ("SIT-985-300", "UNK"),  # the older format: a SIT of no known kind
        ("SIT-XX-985-300", "UNK"),
        ("FAX-1100-500", None),
        ("TONE-600-200", None),
        ("BEEP-3000-1000", None),
        ("HUMAN-600-580", None),
        ("", None),
        ("SITE", None),
    ],
)
def test_sit_kind_of_cause(cause: str, kind: str | None) -> None:
    assert sit_kind_of_cause(cause) == kind


def test_the_table_is_the_standards() -> None:
    assert {(a, b): k for a, b, k in TABLE} == SIT_KINDS
    assert set(SIT_KINDS.values()) | {"UNK"} == set(SIT_KIND_NAMES)


def test_the_corpus_labels_name_the_sit_its_tones_code(small_corpus: Path) -> None:
    labels = read_labels(small_corpus)
    for label in labels:
        sits = [t for t in label["tones"] if t["kind"] == "sit"]
        if not sits:
            assert label["sit_kind"] is None
            continue
        (a, b, _) = sits
        code = [  # (label times are rounded to the ms: 273-275 is 274)
            ("L" if t["hz"] < low_below else "H")
            + ("274" if t["end_ms"] - t["onset_ms"] < 327 else "380")
            for t, low_below in ((a, 950), (b, 1400))
        ]
        assert label["sit_kind"] == SIT_KINDS.get((code[0], code[1]), "UNK")
    told = [
        (label["sit_kind"], sit_kind_of_cause(out["cause"]))
        for label in labels
        if label["sit_kind"] is not None
        for out in [run_detector(AmdDetector(), read_wav_8k(small_corpus / label["file"]))]
    ]
    assert told  # the small corpus has intercepts that open on a SIT
    assert sum(a == b for a, b in told) >= len(told) - 1


def test_eval_scores_the_sit_kind_of_the_files_that_have_one() -> None:
    def label(sit_kind: str | None) -> dict:
        return {"file": "x.wav", "subset": "intercept", "truth": "intercept",
                "expected": "MACHINE", "sit_kind": sit_kind}  # fmt: skip

    def out(cause: str) -> dict:
        return {"verdict": "MACHINE", "cause": cause, "decision_ms": 900, "beep_ms": None}

    labels = [label("VC"), label("NC"), label("UNK"), label("IC"), label(None)]
    outcomes = [
        out("SIT-VC-985-372"),
        out("SIT-RO-914-272"),  # wrong kind
        out("SIT-UNK-985-272"),
        out("LONGGREETING-2800-2800"),  # the SIT was missed
        out("SIT-IC-914-272"),  # no SIT in the label: not counted
    ]
    s = score(labels, outcomes)
    assert (s["sit_files"], s["sit_kind_accuracy"]) == (4, 0.5)
