"""The evaluation's figures on hand-made labels and outcomes: each definition checked exactly."""

from __future__ import annotations

from typing import Any

import pytest

from dialer.amd._eval import goals_met, percentile, score


def _label(truth: str, expected: str, **extra: Any) -> dict[str, Any]:
    return {"file": "x.wav", "subset": "s", "truth": truth, "expected": expected, **extra}


def _out(verdict: str, decision_ms: int = 1000, beep_ms: int | None = None) -> dict[str, Any]:
    return {"verdict": verdict, "cause": "", "decision_ms": decision_ms, "beep_ms": beep_ms}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        (list(range(1, 11)), 50, 5),  # ceil(0.5 * 10) = 5th value, not the 6th
        (list(range(1, 21)), 95, 19),  # ceil(0.95 * 20) = 19th, not the maximum
        ([1, 2], 50, 1),
        (list(range(1, 7)), 50, 3),
        (list(range(1, 6)), 50, 3),
        (list(range(1, 101)), 95, 95),
        (list(range(1, 124)), 95, 117),
        (list(range(1, 11)), 95, 10),  # fewer than 20 values: the p95 is their maximum
        ([7], 95, 7),
        ([3, 1, 2], 0, 1),
        ([3, 1, 2], 100, 3),
    ],
)
def test_percentiles_are_nearest_rank(values: list[int], q: float, expected: int) -> None:
    assert percentile(values, q) == expected


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


def test_the_median_decision_time_of_an_even_count_is_the_lower_middle() -> None:
    labels = [_label("human", "HUMAN", first_utterance=[100, 500]) for _ in range(10)]
    outcomes = [_out("HUMAN", decision_ms=1000 + 100 * i) for i in range(10)]
    s = score(labels, outcomes)
    assert s["human_decision_ms"] == {"n": 10, "median": 1400, "p95": 1900, "max": 1900}
    assert s["human_after_utterance_ms"]["median"] == 900


def _beep_files(located: list[int | None]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Machines with a beep at 5000 ms, located at the given positions (None: missed)."""
    labels = [_label("machine", "MACHINE", beep={"onset_ms": 5000}) for _ in located]
    return labels, [_out("MACHINE", beep_ms=b) for b in located]


def test_missed_beeps_count_against_the_beep_goal() -> None:
    # One beep in twenty located, exactly: the error over located beeps is 0 ms, but 19 of
    # the 20 beeps were never found.
    labels, outcomes = _beep_files([5000] + [None] * 19)
    s = score(labels, outcomes)
    assert (s["beep_files"], s["beep_found"], s["beep_within_150ms"]) == (20, 1, 0.05)
    assert s["beep_error_ms"]["p95"] == 0
    assert goals_met(s)["beep_error_p95<=150ms"] is False


def test_the_beep_goal_allows_one_miss_in_twenty() -> None:
    labels, outcomes = _beep_files([5010] * 19 + [None])
    assert goals_met(score(labels, outcomes))["beep_error_p95<=150ms"] is True
    labels, outcomes = _beep_files([5010] * 18 + [None, 5400])  # a miss and a beep 400 ms off
    assert goals_met(score(labels, outcomes))["beep_error_p95<=150ms"] is False


def test_no_beep_files_cannot_meet_the_beep_goal() -> None:
    s = score([_label("human", "HUMAN")], [_out("HUMAN")])
    assert s["beep_files"] == 0
    assert goals_met(s)["beep_error_p95<=150ms"] is False
