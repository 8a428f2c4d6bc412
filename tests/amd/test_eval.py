"""Evaluation and the ``puente amd`` commands, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dialer.amd import AmdDetector, evaluate, read_labels, read_wav_8k, run_detector
from tests.amd._signals import join, pcm, silence, voice
from tests.amd.test_wav import float_wav, wav_bytes

_SCRIPT = Path(sys.executable).parent / "puente"
PUENTE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "puente"]


def puente(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PUENTE, *args], capture_output=True, text=True, timeout=120, env={**os.environ}
    )


@pytest.fixture(scope="module")
def report(small_corpus: Path) -> dict:
    return evaluate(small_corpus, jobs=2)


def test_puente_beats_the_app_amd_baseline(report: dict) -> None:
    ours = report["detectors"]["puente"]["overall"]
    base = report["detectors"]["app_amd"]["overall"]
    assert ours["files"] == base["files"] == 45
    assert ours["accuracy"] >= 0.85
    assert ours["accuracy"] >= base["accuracy"] + 0.15
    assert ours["human_called_machine"] < base["human_called_machine"]
    assert ours["human_called_machine"] <= 0.05
    assert ours["notsure_rate"] <= 0.1
    # app_amd does not look for beeps; Puente places them.
    assert base["beep_found"] == 0
    assert ours["beep_found"] >= 0.8 * ours["beep_files"]
    assert ours["beep_error_ms"]["max"] <= 150
    # Machines are decided within the hard cap; people within about a second of speaking.
    assert ours["machine_decision_ms"]["max"] <= 4000
    assert ours["human_after_utterance_ms"]["median"] <= 700


def test_the_report_has_every_subset_and_the_goals(report: dict) -> None:
    for name in ("puente", "app_amd"):
        d = report["detectors"][name]
        assert set(d["subsets"]) == {
            "human_short",
            "human_repeated",
            "human_business",
            "machine_long_beep",
            "machine_long_nobeep",
            "machine_short",
            "silence",
            "intercept",
            "fax",
        }
        assert sum(s["files"] for s in d["subsets"].values()) == 45
        assert all(isinstance(v, bool) for v in d["goals"].values())
    assert report["seed_ranges"] == ["dev"]


def test_eval_json_from_the_command_line_matches(small_corpus: Path, report: dict) -> None:
    out = puente("amd", "eval", str(small_corpus), "--json", "--jobs", "2")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["detectors"] == report["detectors"]
    table = puente("amd", "eval", str(small_corpus), "--detectors", "puente")
    assert table.returncode == 0, table.stderr
    assert "overall" in table.stdout
    assert "human_short" in table.stdout
    # The intercepts' SIT kinds, named as the labels name them.
    (row,) = [line for line in table.stdout.splitlines() if " intercept " in line]
    sit = report["detectors"]["puente"]["subsets"]["intercept"]["sit_kind_accuracy"]
    assert "SIT kind" in table.stdout
    assert row.split()[-1] == ("-" if sit is None else f"{100 * sit:.1f}%")


def test_classify_prints_the_verdict_of_the_detector(small_corpus: Path) -> None:
    label = next(lab for lab in read_labels(small_corpus) if lab["subset"] == "machine_long_beep")
    path = small_corpus / label["file"]
    expected = run_detector(AmdDetector(), read_wav_8k(path))
    out = puente("amd", "classify", str(path))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert {k: got[k] for k in ("verdict", "cause", "decision_ms", "beep_ms")} == {
        k: expected[k] for k in ("verdict", "cause", "decision_ms", "beep_ms")
    }
    assert got["verdict"] == "MACHINE"


def test_classify_resamples_any_pcm_wav(tmp_path: Path) -> None:
    x8 = join(silence(0.3), voice(0.6, seed=5), silence(3.0))
    x16 = np.repeat(pcm(x8), 2)  # the same call at 16 kHz
    path = tmp_path / "hello16k.wav"
    path.write_bytes(wav_bytes(x16, 16000))
    out = puente("amd", "classify", str(path))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["verdict"] == "HUMAN"
    assert got["cause"].startswith("HUMAN-")
    assert 1300 <= got["decision_ms"] <= 1700
    app = json.loads(puente("amd", "classify", str(path), "--detector", "app_amd").stdout)
    assert app["detector"] == "app_amd"
    assert app["verdict"] in ("HUMAN", "MACHINE", "NOTSURE")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (float_wav(), "not PCM audio (IEEE float)"),
        (wav_bytes(np.zeros(0, dtype="<i2"), 8000), "empty (no audio frames)"),
        (b"ID3\x03\x00 an mp3, say", "not a WAV file"),
    ],
)
def test_classify_explains_a_bad_file(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "call.wav"
    path.write_bytes(data)
    out = puente("amd", "classify", str(path))
    assert out.returncode == 2
    assert message in out.stderr
    assert "call.wav" in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_corpus_command_writes_a_corpus(tmp_path: Path) -> None:
    from tests.amd.conftest import tools_missing

    if tools_missing():
        pytest.skip("espeak-ng or sox not installed (./dev setup installs them)")
    out = puente(
        "amd", "corpus", str(tmp_path / "c"), "--seed", "5", "--count", "2",
        "--subsets", "human_short", "fax", "--jobs", "1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["files"] == 2
    assert summary["subsets"] == {"human_short": 1, "fax": 1}
    assert len(read_labels(tmp_path / "c")) == 2
    bad = puente("amd", "corpus", str(tmp_path / "d"), "--seed", "5", "--count", "0")
    assert bad.returncode == 2
    assert "must be positive" in bad.stderr


def _tone_from_the_first_sample(seconds: float = 1.0, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2")


def test_no_position_is_reported_before_the_start_of_the_file() -> None:
    for hz in (440.0, 1000.0):
        out = run_detector(AmdDetector(), _tone_from_the_first_sample(hz=hz))
        assert out["beep_ms"] is not None
        assert out["beep_ms"] >= 0
        assert out["decision_ms"] >= 0
        cue = out["cue"] or {}
        assert all(v >= 0 for k, v in cue.items() if k.endswith("_ms") and v is not None)


def test_classify_reads_extensible_pcm_and_says_what_it_analysed(tmp_path: Path) -> None:
    from tests.amd.test_wav import extensible_wav

    x = _tone_from_the_first_sample(hz=440.0)
    stereo = np.stack([x, x], axis=1).reshape(-1)
    path = tmp_path / "sox-stereo.wav"
    path.write_bytes(extensible_wav(stereo.tobytes(), 8000, 2, 2))
    out = puente("amd", "classify", str(path))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["verdict"] == "MACHINE"
    assert got["beep_ms"] >= 0
    assert got["cue"]["beep_ms"] >= 0
    assert got["duration_ms"] == got["file_duration_ms"] == 1000
    assert got["capped_at_ms"] is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFF\xa4\x3e\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>",
         "'fmt' chunk at byte 12"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \xff\xff\xff\xff" + bytes(16), "declares 4294967295"),
    ],
)  # fmt: skip
def test_classify_explains_a_truncated_or_corrupt_header(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "call.wav"
    path.write_bytes(data)
    out = puente("amd", "classify", str(path))
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert "()" not in out.stderr


def test_eval_explains_bad_labels_and_refuses_an_empty_corpus(tmp_path: Path) -> None:
    (tmp_path / "labels.jsonl").write_text(
        '{"file": "a.wav", "subset": "x", "truth": "human", "expected": "HUMAN"}\n'
        '{"file": "b.wav", "subset": "x", "expected": "HUMAN"}\n'
    )
    out = puente("amd", "eval", str(tmp_path), "--json", "--jobs", "1")
    assert out.returncode == 2
    assert "labels.jsonl:2: missing truth" in out.stderr
    assert "Traceback" not in out.stderr
    (tmp_path / "labels.jsonl").write_text("\n")
    out = puente("amd", "eval", str(tmp_path), "--json", "--jobs", "1")
    assert out.returncode == 2
    assert "no labels" in out.stderr
    assert out.stdout == ""


def test_corpus_command_refuses_a_bad_seed_or_out_dir_before_creating_anything(
    tmp_path: Path,
) -> None:
    target = tmp_path / "new"
    out = puente("amd", "corpus", str(target), "--seed", "-5", "--count", "1")
    assert out.returncode == 2
    assert "--seed: must be 0 or more: -5" in out.stderr
    assert not target.exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    for where, message in (
        (afile, "exists and is not a directory"),
        (afile / "sub", f"{afile} is not a directory"),
    ):
        out = puente("amd", "corpus", str(where), "--seed", "5", "--count", "1", "--jobs", "1")
        if "not installed" in out.stderr or "espeak-ng" in out.stderr.split(":")[-1]:
            pytest.skip("espeak-ng or sox not installed")
        assert out.returncode == 2, out.stdout
        assert message in out.stderr
        assert "Traceback" not in out.stderr
