"""Run detectors over a labelled corpus and score them: per subset and overall, in one run.

Definitions (all files of a group unless said otherwise):

- ``accuracy``: verdict equals the expected one (silence expects NOTSURE);
- ``decided_accuracy``: among HUMAN and MACHINE verdicts, the share that is right;
- ``human_called_machine``: among humans, the share called MACHINE;
- ``machine_recall``: among machines, intercepts and faxes, the share called MACHINE;
- ``notsure_rate``: among files that expect HUMAN or MACHINE, the share left NOTSURE;
- ``human_decision_ms`` / ``machine_decision_ms``: from the answer (the start of the file) to
  a right HUMAN / MACHINE verdict; ``human_after_utterance_ms``: from the end of the first
  utterance to a right HUMAN verdict;
- ``beep_error_ms``: |detected - true| beep onset over the files with a beep where a beep was
  located (``beep_found`` of ``beep_files``); ``beep_within_150ms``: the share of *all* files
  with a beep whose beep was located within 150 ms (a missed beep is not within).
- ``sit_kind_accuracy``: among files whose label has a ``sit_kind`` (intercepts that open on
  a SIT), the share whose ``AMDCAUSE`` names that kind (``SIT-<kind>-...``; an unassigned
  code is labelled, and must be reported, ``UNK``);
- percentiles are nearest-rank (:func:`percentile`); ``n`` says how many values they rest on.

The goal on beep position (``beep_error_p95<=150ms``) is over every file with a beep, a missed
beep counting as an error larger than any bound: at least 95 % of them (nearest rank) located
within 150 ms. Over located beeps only, a detector that found one beep in twenty, exactly,
would meet it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dialer.amd._appamd import AppAmdDetector
from dialer.amd._corpus import read_labels, seed_range, verify_checksums
from dialer.amd._detector import AmdDetector
from dialer.amd._settings import AmdSettings, AppAmdSettings
from dialer.amd._tone import sit_kind_of_cause
from dialer.amd._wav import frames_of, read_wav_8k
from puente.quantiles import nearest_rank as _nearest_rank
from puente.quantiles import percentile

DETECTORS = ("puente", "app_amd")

#: The issue's goals on the test seeds.
GOALS = {
    "human_called_machine_max": 0.01,
    "machine_recall_min": 0.95,
    "notsure_rate_max": 0.05,
    "decided_accuracy_min": 0.95,
    "human_after_utterance_median_ms_max": 600,
    "human_after_utterance_p95_ms_max": 1000,
    "machine_decision_median_ms_max": 2500,
    "machine_decision_max_ms_max": 4000,
    "beep_error_ms_max": 150,
}


def _position_ms(ms: Any) -> Any:
    """A position in the file as reported: never before its start (the detector may date a
    tone's onset a few ms before the frame it heard it in, which for a tone from the very
    first sample is before the file)."""
    return max(0, ms) if isinstance(ms, int | float) else ms


def run_detector(detector: Any, samples: Any) -> dict[str, Any]:
    """Feed a whole recording in 20 ms frames, then :meth:`finish`; the outcome as a dict.

    Positions (``*_ms``) are from the start of the recording, at least 0.
    """
    for frame in frames_of(samples):
        detector.feed(frame)
        if detector.done:
            break
    verdict = detector.finish()
    cue = detector.cue
    beep_ms = cue.beep_ms if cue is not None and cue.beep_ms is not None else verdict.beep_ms
    cue_dict = None
    if cue is not None:
        cue_dict = {
            k: _position_ms(v) if k.endswith("_ms") else v for k, v in cue.as_dict().items()
        }
    return {
        "verdict": str(verdict.status),
        "cause": verdict.cause,
        "decision_ms": _position_ms(verdict.decision_ms),
        "beep_ms": _position_ms(beep_ms),
        "cue": cue_dict,
    }


def make_detector(name: str) -> AmdDetector | AppAmdDetector:
    if name == "puente":
        return AmdDetector(AmdSettings())
    if name == "app_amd":
        return AppAmdDetector(AppAmdSettings())
    raise ValueError(f"unknown detector {name!r}")


def _one(args: tuple[str, dict[str, Any], tuple[str, ...]]) -> dict[str, Any]:
    corpus_dir, label, detectors = args
    samples = read_wav_8k(Path(corpus_dir) / label["file"])
    return {name: run_detector(make_detector(name), samples) for name in detectors}


def classify_corpus(
    corpus_dir: str | Path, detectors: Sequence[str] = DETECTORS, jobs: int | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(labels, outcomes): one outcome per file, keyed by detector name."""
    labels = read_labels(corpus_dir)
    work = [(str(corpus_dir), label, tuple(detectors)) for label in labels]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(work) or 1))
    if jobs == 1:
        return labels, [_one(w) for w in work]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        outcomes = list(pool.map(_one, work, chunksize=max(1, len(work) // (4 * jobs))))
    return labels, outcomes


def _stats(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "median": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def score(labels: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures for one detector: ``outcomes`` are that detector's per-file outcome dicts."""
    n = len(labels)
    right = decided = decided_right = 0
    humans = human_machine = machines = machine_hit = decidable = notsure = 0
    human_ms: list[float] = []
    after_utt: list[float] = []
    machine_ms: list[float] = []
    beep_err: list[float] = []
    beep_files = beep_within = 0
    sit_files = sit_right = 0
    for label, out in zip(labels, outcomes, strict=True):
        verdict, expected = out["verdict"], label["expected"]
        right += verdict == expected
        if verdict in ("HUMAN", "MACHINE"):
            decided += 1
            decided_right += verdict == expected
        if expected != "NOTSURE":
            decidable += 1
            notsure += verdict == "NOTSURE"
        if label["truth"] == "human":
            humans += 1
            human_machine += verdict == "MACHINE"
            if verdict == "HUMAN":
                human_ms.append(out["decision_ms"])
                if label.get("first_utterance"):
                    after_utt.append(out["decision_ms"] - label["first_utterance"][1])
        if expected == "MACHINE":
            machines += 1
            if verdict == "MACHINE":
                machine_hit += 1
                machine_ms.append(out["decision_ms"])
        beep = label.get("beep")
        if beep:
            beep_files += 1
            if out.get("beep_ms") is not None:
                err = abs(out["beep_ms"] - beep["onset_ms"])
                beep_err.append(err)
                beep_within += err <= GOALS["beep_error_ms_max"]
        sit_kind = label.get("sit_kind")
        if sit_kind is not None:
            sit_files += 1
            sit_right += sit_kind_of_cause(out["cause"]) == sit_kind
    return {
        "files": n,
        "accuracy": _rate(right, n),
        "decided": decided,
        "decided_accuracy": _rate(decided_right, decided),
        "human_called_machine": _rate(human_machine, humans),
        "machine_recall": _rate(machine_hit, machines),
        "notsure_rate": _rate(notsure, decidable),
        "human_decision_ms": _stats(human_ms),
        "human_after_utterance_ms": _stats(after_utt),
        "machine_decision_ms": _stats(machine_ms),
        "beep_files": beep_files,
        "beep_found": len(beep_err),
        "beep_within_150ms": _rate(beep_within, beep_files),
        "beep_within_150ms_files": beep_within,
        "beep_error_ms": _stats(beep_err),
        "sit_files": sit_files,
        "sit_kind_accuracy": _rate(sit_right, sit_files),
    }


def goals_met(overall: dict[str, Any]) -> dict[str, bool]:
    """Each goal of the issue, met or not (a figure that could not be measured is not met)."""

    def le(value: Any, bound: float) -> bool:
        return value is not None and value <= bound

    def ge(value: Any, bound: float) -> bool:
        return value is not None and value >= bound

    g = GOALS
    return {
        "human_called_machine<=1%": le(
            overall["human_called_machine"], g["human_called_machine_max"]
        ),
        "machine_recall>=95%": ge(overall["machine_recall"], g["machine_recall_min"]),
        "notsure<=5%": le(overall["notsure_rate"], g["notsure_rate_max"]),
        "decided_accuracy>=95%": ge(overall["decided_accuracy"], g["decided_accuracy_min"]),
        "human_after_utterance_median<=600ms": le(
            overall["human_after_utterance_ms"]["median"],
            g["human_after_utterance_median_ms_max"],
        ),
        "human_after_utterance_p95<=1000ms": le(
            overall["human_after_utterance_ms"]["p95"], g["human_after_utterance_p95_ms_max"]
        ),
        "machine_decision_median<=2500ms": le(
            overall["machine_decision_ms"]["median"], g["machine_decision_median_ms_max"]
        ),
        "machine_decision_max<=4000ms": le(
            overall["machine_decision_ms"]["max"], g["machine_decision_max_ms_max"]
        ),
        # Every file with a beep counts, a missed beep as an error over the bound.
        "beep_error_p95<=150ms": overall["beep_files"] > 0
        and overall["beep_within_150ms_files"] >= _nearest_rank(overall["beep_files"], 95),
    }


def evaluate(
    corpus_dir: str | Path, detectors: Sequence[str] = DETECTORS, jobs: int | None = None
) -> dict[str, Any]:
    """The report of ``puente amd eval``: per detector, overall and per subset."""
    labels, outcomes = classify_corpus(corpus_dir, detectors, jobs)
    seeds = sorted({label.get("seed") for label in labels if label.get("seed") is not None})
    report: dict[str, Any] = {
        "corpus": str(corpus_dir),
        "files": len(labels),
        "seeds": seeds,
        "seed_ranges": sorted({seed_range(s) for s in seeds}),
        # The figures are on these bytes: the corpus against its SHA256SUMS (None: no sums).
        "checksum_problems": verify_checksums(corpus_dir),
        "detectors": {},
    }
    subsets = sorted({label["subset"] for label in labels})
    for name in detectors:
        mine = [o[name] for o in outcomes]
        overall = score(labels, mine)
        per_subset = {}
        for subset in subsets:
            idx = [i for i, label in enumerate(labels) if label["subset"] == subset]
            per_subset[subset] = score([labels[i] for i in idx], [mine[i] for i in idx])
        report["detectors"][name] = {
            "overall": overall,
            "goals": goals_met(overall),
            "subsets": per_subset,
        }
    return report
