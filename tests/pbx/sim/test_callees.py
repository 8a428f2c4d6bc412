"""The seeded callee model."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from pbx.sim._callees import (
    DEFAULT_MODEL,
    WIRE,
    CalleeModel,
    CalleeModelError,
    Distribution,
    ModelFile,
)


def test_fates_are_deterministic_per_number_and_attempt() -> None:
    a = DEFAULT_MODEL.fate("+5215512345678", "attempt-1")
    b = DEFAULT_MODEL.fate("+5215512345678", "attempt-1")
    assert a == b
    others = {DEFAULT_MODEL.fate("+5215512345678", f"attempt-{i}").ring_s for i in range(20)}
    assert len(others) > 10  # a retry is a new draw


def test_outcome_shares_follow_the_model() -> None:
    counts = Counter(DEFAULT_MODEL.fate(f"+3460000{i:04d}", "a").outcome for i in range(20000))
    for name, p in DEFAULT_MODEL.spec.outcomes.items():
        assert abs(counts[name] / 20000 - p) < 0.015, name
    live = counts["human"] / 20000
    assert 0.10 <= live <= 0.25  # collections: 10-25% live answers


def test_wire_facts_match_the_recorded_table() -> None:
    assert (WIRE["busy"].reason, WIRE["busy"].cause, WIRE["busy"].dial_status) == (0, 17, "BUSY")
    assert (WIRE["no_answer"].reason, WIRE["no_answer"].cause, WIRE["no_answer"].dial_status) == (
        3,
        19,
        None,
    )
    assert (WIRE["congestion"].cause, WIRE["rejected"].cause) == (34, 21)
    assert WIRE["human"].reason == 4


def test_number_overrides_exact_and_prefix() -> None:
    model = CalleeModel(
        ModelFile(numbers={"+15550000001": "busy", "+1555*": "machine", "+15550*": "rejected"})
    )
    assert model.fate("+15550000001", "x").outcome == "busy"
    assert model.fate("+15550000002", "x").outcome == "rejected"  # longest prefix wins
    assert model.fate("+15551234567", "x").outcome == "machine"
    assert model.fate("+15551234567", "x").wire.reason == 4


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("outcomes: {human: 0.5}", "sum to 0.5"),
        ("outcomes: {alien: 1.0}", "unknown outcome"),
        ("ring_s: {dist: gamma}", "not fixed/uniform/lognormal"),
        ("colour: blue", "colour"),
        ("numbers: {'+1': martian}", "unknown outcome 'martian'"),
        ("ring_s: {dist: uniform, low: 5, high: 1}", "low <= high"),
        # Accepted before, and then every call rang for a negative, NaN or endless time.
        ("ring_s: {dist: fixed, value: -5}", "value >= 0"),
        ("ring_s: {dist: fixed, value: .nan}", r"ring_s\.value: nan is not a number"),
        ("talk_s: {dist: lognormal, median: .nan}", r"talk_s\.median: nan"),
        ("patience_s: {dist: fixed, value: .inf}", r"patience_s\.value: inf"),
        ("machine_beep: 7", r"machine_beep: 7\.0 is not in \[0, 1\]"),
    ],
)
def test_malformed_model_files_name_the_problem(
    tmp_path: Path, yaml_text: str, problem: str
) -> None:
    f = tmp_path / "model.yaml"
    f.write_text(yaml_text)
    with pytest.raises(CalleeModelError, match=problem) as info:
        CalleeModel.from_file(f)
    assert str(f) in str(info.value)


def test_the_shipped_default_model_loads_and_matches_the_builtin_defaults() -> None:
    shipped = CalleeModel.from_file(
        Path(__file__).resolve().parents[3] / "pbx" / "sim" / "models" / "collections.yaml"
    )
    assert shipped.spec.outcomes == DEFAULT_MODEL.spec.outcomes
    assert shipped.fate("+15550100123", "a").outcome == "busy"


def test_a_model_file_that_is_not_text_is_named_not_a_traceback(tmp_path: Path) -> None:
    f = tmp_path / "model.yaml"
    f.write_bytes(b"\xff\xfe outcomes")
    with pytest.raises(CalleeModelError, match="can't decode") as info:
        CalleeModel.from_file(f)
    assert str(f) in str(info.value)


def test_a_huge_lognormal_spread_samples_within_its_bounds() -> None:
    d = Distribution(dist="lognormal", median=1e308, sigma=1000.0, max=60.0)
    d.check("ring_s")
    rng = random.Random(1)
    assert all(0 <= d.sample(rng) <= 60.0 for _ in range(200))  # no OverflowError mid-call
