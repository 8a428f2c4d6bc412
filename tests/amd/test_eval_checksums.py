"""``puente amd eval`` says whether the corpus it scored is the one its SHA256SUMS pins."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from dialer.amd._corpus import verify_checksums
from dialer.amd._eval import evaluate
from dialer.amd._wav import write_wav


def _corpus(root: Path) -> Path:
    silence = np.zeros(8000 * 3, dtype=np.int16)
    write_wav(root / "a.wav", silence)
    (root / "labels.jsonl").write_text(
        json.dumps({"file": "a.wav", "subset": "silence", "truth": "silence",
                    "expected": "NOTSURE", "seed": 5}) + "\n"
    )  # fmt: skip
    lines = [
        f"{hashlib.sha256((root / n).read_bytes()).hexdigest()}  {n}"
        for n in ("a.wav", "labels.jsonl")
    ]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return root


def test_a_corpus_that_matches_its_sums_is_verified(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    assert verify_checksums(root) == []
    assert evaluate(root, jobs=1)["checksum_problems"] == []


def test_a_changed_or_missing_file_is_named(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    write_wav(root / "a.wav", np.ones(8000 * 3, dtype=np.int16))
    assert verify_checksums(root) == ["a.wav: changed (SHA-256 differs from SHA256SUMS)"]
    assert evaluate(root, jobs=1)["checksum_problems"] == verify_checksums(root)
    (root / "a.wav").unlink()
    assert verify_checksums(root) == ["a.wav: missing"]


def test_a_labelled_file_outside_the_sums_and_a_corpus_without_sums(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    write_wav(root / "b.wav", np.zeros(8000, dtype=np.int16))
    with (root / "labels.jsonl").open("a") as fh:
        fh.write('{"file": "b.wav", "subset": "x", "truth": "human", "expected": "HUMAN"}\n')
    assert verify_checksums(root) == [
        "labels.jsonl: changed (SHA-256 differs from SHA256SUMS)",
        "b.wav: not in SHA256SUMS",
    ]
    (root / "SHA256SUMS").unlink()
    assert verify_checksums(root) is None
    assert evaluate(root, jobs=1)["checksum_problems"] is None
