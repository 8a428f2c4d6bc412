"""The strict YAML reader: every problem is a StrictYamlError naming the path or the line."""

from __future__ import annotations

import time

import pytest

from puente.strict_yaml import StrictYamlError, load_strict


def _laughs(levels: int = 8) -> str:
    lines = ["l0: &l0 [x,x,x,x,x,x,x,x,x,x]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_plain_values_still_load() -> None:
    text = 'a: "x"\nb: 3\nc: 1.5\nd: true\ne: ~\nf: 2026-01-01\ng: [1, {h: i}]\n'
    assert load_strict(text)["g"] == [1, {"h": "i"}]


def test_an_alias_bomb_is_refused_before_it_is_expanded() -> None:
    started = time.monotonic()
    with pytest.raises(StrictYamlError, match=r"anchors and aliases are not allowed \(line 1\)"):
        load_strict(_laughs())
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: &x 1\n", 1),  # an anchor alone
        ("a: 1\nb: *x\n", 2),  # an alias alone
        ("a: &a [*a]\n", 1),  # a recursive one
        ("base: &b {k: v}\nother:\n  <<: *b\n", 1),
    ],
)
def test_anchors_and_aliases_are_refused_with_their_line(text: str, line: int) -> None:
    with pytest.raises(
        StrictYamlError, match=rf"anchors and aliases are not allowed \(line {line}\)"
    ):
        load_strict(text)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('a: !foo "x"\n', "!foo"),
        ("a: !foo [1]\n", "!foo"),
        ('a: !!int "abc"\n', "!!int"),
        ('a: !!float "abc"\n', "!!float"),
        ('a: !!timestamp "abc"\n', "!!timestamp"),
        ('a: !!binary "aGk="\n', "!!binary"),
        ("a: !!set {x}\n", "!!set"),
        ('a: !!python/object:os.system "x"\n', "!!python/object:os.system"),
    ],
)
def test_explicit_tags_are_refused(text: str, shown: str) -> None:
    with pytest.raises(StrictYamlError) as info:
        load_strict(text)
    assert (
        info.value.problem
        == f"tags such as {shown!r} are not allowed (line 1); write a plain value"
    )


@pytest.mark.parametrize(
    ("text", "path", "problem"),
    [
        ("a: 2026-13-45\n", "a", "'2026-13-45' is not a valid timestamp (line 1)"),
        ("a:\n  - 2026-02-30\n", "a[0]", "'2026-02-30' is not a valid timestamp (line 2)"),
        ("a: =\n", "a", "'=' is not a plain YAML value (line 1); quote it"),
    ],
)
def test_values_that_cannot_be_built_name_their_path(text: str, path: str, problem: str) -> None:
    with pytest.raises(StrictYamlError) as info:
        load_strict(text)
    assert info.value.path == path
    assert info.value.problem.startswith(problem)


def test_deep_nesting_is_an_error_not_a_recursion_error() -> None:
    with pytest.raises(StrictYamlError):
        load_strict("a: " + "[" * 100_000 + "]" * 100_000 + "\n")


@pytest.mark.parametrize("value", ["030", "-010", "0x1e", "0b11", "00"])
def test_integers_not_written_in_decimal_are_refused(value: str) -> None:
    # YAML 1.1 reads 030 as 24: a pack's `period_days: 030` would have capped calls over 24 days.
    with pytest.raises(StrictYamlError, match=r"period_days: .* octal, hexadecimal or binary"):
        load_strict(f"period_days: {value}\n")
    assert load_strict("a: 0\nb: 30\nc: -7\nd: 1_000\ne: '030'\n") == {
        "a": 0, "b": 30, "c": -7, "d": 1000, "e": "030"
    }  # fmt: skip


def test_a_value_too_long_to_be_a_number_is_named_briefly() -> None:
    with pytest.raises(StrictYamlError) as e:
        load_strict("seed: " + "9" * 5000 + "\n")
    assert "not a valid int" in str(e.value)
    assert len(str(e.value)) < 300
