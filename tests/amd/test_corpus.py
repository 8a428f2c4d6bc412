"""The corpus generator: the plan, bit-identical output for a seed, labels that match the audio."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dialer.amd import (
    DEV_SEEDS,
    SUBSET_NAMES,
    TEST_SEEDS,
    AmdDetector,
    CorpusError,
    generate_corpus,
    read_labels,
    read_wav_8k,
    run_detector,
)
from dialer.amd import _phrases as ph
from dialer.amd._corpus import (
    CHECKSUMS,
    GREETING_MAX_S,
    GREETING_MIN_S,
    MANIFEST,
    SUBSETS,
    _greeting,
    checksums,
    plan,
)
from tests.amd.conftest import needs_tools


def test_dev_and_test_seeds_do_not_overlap() -> None:
    assert not set(DEV_SEEDS) & set(TEST_SEEDS)


def test_the_plan_follows_the_weights_and_the_seed() -> None:
    names = plan(1000, 200)
    counts = Counter(names)
    for subset in SUBSETS:
        assert counts[subset.name] == pytest.approx(200 * subset.weight, abs=1)
    assert sum(counts.values()) == 200
    assert plan(1000, 200) == names
    assert plan(1001, 200) != names
    assert Counter(plan(5, 10, ["fax", "silence"])) == {"fax": 5, "silence": 5}
    with pytest.raises(CorpusError, match="unknown subset"):
        plan(5, 10, ["fax", "robots"])


@needs_tools
def test_the_same_seed_gives_bit_identical_files(tmp_path: Path) -> None:
    subsets = ["human_short", "machine_long_beep", "machine_short", "intercept", "fax"]
    a = generate_corpus(tmp_path / "a", seed=3, count=5, subsets=subsets, jobs=2)
    b = generate_corpus(tmp_path / "b", seed=3, count=5, subsets=subsets, jobs=1)
    assert a.files == b.files == 5
    sums_a, sums_b = checksums(a.out_dir), checksums(b.out_dir)
    assert sums_a == sums_b
    assert len(sums_a) == 5 + 2  # the WAVs, labels.jsonl and manifest.json
    for name, digest in sums_a.items():
        assert hashlib.sha256((a.out_dir / name).read_bytes()).hexdigest() == digest
    c = generate_corpus(tmp_path / "c", seed=4, count=5, subsets=subsets, jobs=2)
    assert checksums(c.out_dir) != sums_a
    manifest = json.loads((a.out_dir / MANIFEST).read_text())
    assert manifest["seed"] == 3
    assert manifest["seed_range"] == "dev"
    # numpy's Generator draws the noise and every choice: its version pins the bytes too.
    assert set(manifest["tools"]) == {"espeak-ng", "sox", "numpy"}
    assert manifest["tools"]["numpy"] == np.__version__
    assert (a.out_dir / CHECKSUMS).read_text().count("\n") == 7


def _fake_voice(seconds_per_char: float, slow_sentence: str | None = None) -> Any:
    """A stand-in for espeak-ng: speech as long as its text (``slow_sentence`` 8 s longer)."""

    def speak(text: str) -> np.ndarray:
        extra = 8.0 if slow_sentence is not None and slow_sentence in text else 0.0
        return np.zeros(round((len(text) * seconds_per_char + extra) * 8000))

    return speak


_LONG_BODY = {lang: max(ph.MACHINE_BODY[lang], key=len) for lang in ph.MACHINE_BODY}


@pytest.mark.parametrize(
    ("seconds_per_char", "slow"),
    [
        (0.10, False),  # a slow voice: intro and closing alone can pass 10 s
        (0.04, True),  # a fast one, whose longest body sentence would pass 10 s
    ],
)
def test_long_greetings_last_4_to_10_s(seconds_per_char: float, slow: bool) -> None:
    for lang in ("es", "en"):
        speak = _fake_voice(seconds_per_char, _LONG_BODY[lang] if slow else None)
        for seed in range(60):
            text, x = _greeting(np.random.default_rng(seed), lang, speak)
            assert GREETING_MIN_S <= len(x) / 8000 <= GREETING_MAX_S, (lang, seed, text)
            assert len(speak(text)) == len(x)


def test_the_greeting_draws_do_not_depend_on_the_voice() -> None:
    # The same draws whatever the speech's length: what follows a greeting is unchanged.
    after = []
    for speak in (_fake_voice(0.10), _fake_voice(0.04, _LONG_BODY["es"]), _fake_voice(0.06)):
        rng = np.random.default_rng(7)
        _greeting(rng, "es", speak)
        after.append(rng.random())
    assert after[0] == after[1] == after[2]


def test_the_labels_describe_the_audio(small_corpus: Path) -> None:
    labels = read_labels(small_corpus)
    assert {label["subset"] for label in labels} == set(SUBSET_NAMES)
    for label in labels:
        x = read_wav_8k(small_corpus / label["file"])
        assert len(x) * 1000 // 8000 == label["duration_ms"]
        assert 100 <= label["lead_in_ms"] <= 1200
        assert label["expected"] == {"silence": "NOTSURE", "human": "HUMAN"}.get(
            label["truth"], "MACHINE"
        )
        for onset, offset in label["speech"]:
            assert label["lead_in_ms"] <= onset < offset <= label["duration_ms"]
            speech = x[onset * 8 : offset * 8].astype(float)
            before = x[max(0, onset - 80) * 8 : max(0, onset - 30) * 8].astype(float)
            # Louder inside a labelled utterance than just before it.
            assert (speech**2).mean() > 2 * (before**2).mean() + 1
        if label["subset"] == "silence":
            assert label["speech"] == []
            assert label["tones"] == []
        if label["subset"] in ("machine_long_beep", "machine_short"):
            beep = label["beep"]
            assert beep is not None
            assert beep["onset_ms"] > label["speech"][-1][1]
            out = run_detector(AmdDetector(), x)
            if out["verdict"] == "MACHINE":
                assert out["beep_ms"] == pytest.approx(beep["onset_ms"], abs=150)


# -- labels.jsonl: what a label must hold, line numbers in every message ------------------------
_GOOD = '{"file": "a.wav", "subset": "x", "truth": "human", "expected": "HUMAN"}'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"file": "a.wav", "subset": "x", "expected": "HUMAN"}', ":2: missing truth"),
        ('{"file": 5, "subset": "x", "truth": "human", "expected": "HUMAN"}', ":2: file must be"),
        ('{"file": "a.wav", "subset": ["x"], "truth": "human", "expected": "HUMAN"}', ":2: subset"),
        ('{"file": "a.wav", "subset": "x", "truth": "human", "expected": "BANANA"}',
         ":2: expected 'BANANA' is not one of HUMAN, MACHINE, NOTSURE"),
        ('{"file": "a.wav", "subset": "x", "truth": "banana", "expected": "HUMAN"}',
         ":2: truth 'banana'"),
        ('{"file": "a.wav", "subset": "x", "truth": "human", "expected": "HUMAN", "seed": [1]}',
         ":2: seed must be"),
        ('{"file": "a.wav", "subset": "x", "truth": "human", "expected": "HUMAN", "seed": -1}',
         ":2: seed must be"),
        ('{"file": "a.wav", "subset": "x", "truth": "human", "expected": "HUMAN", '
         '"first_utterance": "abc"}', ":2: first_utterance"),
        ('{"file": "a.wav", "subset": "x", "truth": "human", "expected": "HUMAN", '
         '"beep": {"hz": 1}}', ":2: beep"),
        ('{"file": "../a.wav", "subset": "x", "truth": "human", "expected": "HUMAN"}',
         ":2: file '../a.wav' must be a path inside"),
        ("[1, 2]", ":2: a label is a JSON object, not list"),
        ("not json", ":2: not JSON"),
    ],
)  # fmt: skip
def test_bad_labels_are_named_with_their_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "labels.jsonl").write_text(_GOOD + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=message.replace("[", r"\[").replace("(", r"\(")):
        read_labels(tmp_path)


def test_labels_that_are_not_utf8_or_empty_are_refused(tmp_path: Path) -> None:
    (tmp_path / "labels.jsonl").write_bytes(_GOOD.encode() + b"\n\xff\xfe garbage\n")
    with pytest.raises(CorpusError, match=r"labels.jsonl:2: not UTF-8 \(byte 0xff"):
        read_labels(tmp_path)
    (tmp_path / "labels.jsonl").write_text("\n\n")
    with pytest.raises(CorpusError, match="no labels"):
        read_labels(tmp_path)
    (tmp_path / "labels.jsonl").write_text(_GOOD + "\n")
    assert read_labels(tmp_path) == [json.loads(_GOOD)]


# -- generate_corpus: a bad seed or out_dir is refused before anything is created ----------------
@pytest.fixture
def no_tools_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    import dialer.amd._corpus as corpus

    monkeypatch.setattr(corpus, "tool_versions", lambda: {"espeak-ng": "x", "sox": "x"})


@pytest.mark.usefixtures("no_tools_needed")
def test_a_negative_seed_or_a_file_as_out_dir_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="seed -5: must be a whole number, 0 or more"):
        generate_corpus(tmp_path / "new", seed=-5, count=1)
    assert not (tmp_path / "new").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(CorpusError, match="exists and is not a directory"):
        generate_corpus(afile, seed=5, count=1)
    with pytest.raises(CorpusError, match=f"{afile} is not a directory"):
        generate_corpus(afile / "sub", seed=5, count=1)


@pytest.mark.usefixtures("no_tools_needed")
def test_an_unwritable_out_dir_is_a_corpus_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode)
    )
    with pytest.raises(CorpusError, match="permission denied"):
        generate_corpus(tmp_path / "c", seed=5, count=1)
    assert not (tmp_path / "c").exists()
    monkeypatch.setattr(os, "access", real_access)

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(CorpusError, match=r"cannot write the corpus \(Permission denied\)"):
        generate_corpus(tmp_path / "c", seed=5, count=1)
