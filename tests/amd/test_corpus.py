"""The corpus generator: the plan, bit-identical output for a seed, labels that match the audio."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

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
from dialer.amd._corpus import CHECKSUMS, MANIFEST, SUBSETS, checksums, plan
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
    assert set(manifest["tools"]) == {"espeak-ng", "sox"}
    assert (a.out_dir / CHECKSUMS).read_text().count("\n") == 7


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
