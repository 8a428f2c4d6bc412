"""Rule packs: the shipped ones load; malformed ones are refused with file, field and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance import PackError, available_packs, default_pack_names, load_rules, parse_pack
from compliance._rules import CapRule, CooldownRule, WindowRule

GOOD = """\
pack: test_pack
title: Test
jurisdiction: XX
rules:
  - id: test_hours
    kind: calling_window
    summary: office hours
    citation: Test Act s. 1
    hours:
      mon: ["08:00-12:00", "13:00-21:00"]
"""

SHIPPED = (
    "us_federal",
    "us_ma",
    "us_wa",
    "us_fl",
    "mx",
    "mx_profeco",
    "co",
    "es",
    "pe",
    "cl",
)


def _error(text: str, file: str = "test_pack.yaml") -> PackError:
    with pytest.raises(PackError) as info:
        parse_pack(text, file, expected_name="test_pack")
    return info.value


def test_every_shipped_pack_loads_with_citations() -> None:
    found = available_packs()
    assert set(SHIPPED) <= set(found)
    for name in SHIPPED:
        rules = load_rules([name])
        (pack,) = rules.packs
        assert pack.rules
        for rule in pack.rules:
            assert rule.citation.strip()
            assert rule.summary.strip()
            if getattr(rule, "overridable", False):
                assert rule.override_citation.strip()


def test_reg_f_parameters_are_read_from_the_pack() -> None:
    rules = load_rules(["us_federal"])
    (cap,) = rules.caps
    assert isinstance(cap, CapRule)
    assert (cap.max_calls, cap.period_days, cap.per) == (7, 7, "person_debt")
    assert cap.released == {"busy", "not_in_service"}
    (cool,) = rules.cooldowns
    assert isinstance(cool, CooldownRule)
    assert cool.after == {"conversation"}
    assert cool.days == 7
    (hours,) = rules.windows
    assert isinstance(hours, WindowRule)
    assert hours.weekly[0] == ((8 * 60, 21 * 60),)


def test_good_pack_parses_and_sorts_ranges() -> None:
    pack = parse_pack(GOOD, "test_pack.yaml", expected_name="test_pack")
    (w,) = pack.rules
    assert isinstance(w, WindowRule)
    assert w.weekly[0] == ((480, 720), (780, 1260))
    assert w.weekly[6] == ()


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        # unknown field
        (GOOD.replace("    summary: office hours", "    summary: x\n    colour: red"),
         "rules[0].colour", "unknown field"),
        (GOOD + "extra: 1\n", "extra", "unknown field"),
        # wrong types
        (GOOD.replace("title: Test", "title: 12"), "title", "Expected `str`, got `int`"),
        (GOOD.replace('mon: ["08:00-12:00", "13:00-21:00"]', 'mon: "08:00-12:00"'),
         "rules[0].hours.mon", "Expected `array`"),
        # bad times
        (GOOD.replace("13:00-21:00", "13:00-25:00"), "rules[0].hours.mon[1]", "bad end time"),
        (GOOD.replace("13:00-21:00", "8-21"), "rules[0].hours.mon[1]", "bad time range"),
        (GOOD.replace("13:00-21:00", "21:00-13:00"), "rules[0].hours.mon[1]", "ends before"),
        (GOOD.replace('"08:00-12:00", "13:00-21:00"', '"08:00-14:00", "13:00-21:00"'),
         "rules[0].hours.mon", "overlapping"),
        # YAML 1.1 traps
        (GOOD.replace("      mon:", "      yes:"), "rules[0].hours.yes", "YAML 1.1 boolean"),
        (GOOD.replace("      mon:", "      on:"), "rules[0].hours.on", "YAML 1.1 boolean"),
        (GOOD + "default: yes\n", "default", "YAML 1.1 boolean 'yes'"),
        (GOOD.replace('["08:00-12:00", "13:00-21:00"]', "[21:00]"), "rules[0].hours.mon[0]",
         "base-60"),
        # duplicates
        (GOOD.replace("title: Test", "title: Test\ntitle: Again"), "title", "duplicate key"),
        (GOOD + "  - id: test_hours\n    kind: calling_window\n    summary: s\n    citation: c\n"
         '    hours: {tue: ["08:00-09:00"]}\n', "rules[1].id", "duplicate rule id"),
        # kinds and semantics
        (GOOD.replace("kind: calling_window", "kind: curfew"), "rules[0].kind", "Invalid value"),
        (GOOD.replace("citation: Test Act s. 1", 'citation: " "'), "rules[0].citation",
         "must not be empty"),
        (GOOD.replace("jurisdiction: XX", "jurisdiction: Mexico"), "jurisdiction",
         "bad jurisdiction"),
        # ($ in a Python pattern also matches before a final newline: a block scalar's)
        (GOOD.replace("jurisdiction: XX", "jurisdiction: |\n  XX"), "jurisdiction",
         "bad jurisdiction"),
        (GOOD.replace("id: test_hours", 'id: "test_hours\\n"'), "rules[0].id", "bad rule id"),
        (GOOD.replace('"13:00-21:00"', '"13:00-21:00\\n"'), "rules[0].hours.mon[1]",
         "bad time range"),
        (GOOD.replace('"13:00-21:00"', '"\uff11\uff13:00-21:00"'), "rules[0].hours.mon[1]",
         "bad time range"),  # (fullwidth digits)
        # NUL: PostgreSQL's jsonb refuses it, so every decision citing the rule would fail
        (GOOD.replace("citation: Test Act s. 1", 'citation: "Test Act\\0"'), "rules[0].citation",
         "control character"),
        (GOOD.replace("title: Test", 'title: "Te\\x1bst"'), "title", "control character"),
        (GOOD.replace("pack: test_pack", "pack: other"), "pack", "must live in other.yaml"),
        (GOOD.replace("    hours:", "    overridable: true\n    hours:"),
         "rules[0].override_citation", "must cite"),
        ("pack: test_pack\ntitle: T\njurisdiction: XX\nrules:\n  - id: c\n"
         "    kind: consent_required\n    summary: s\n    citation: c\n    channels: [voice]\n"
         "    number_kinds: [mobile]\n"
         "    overridable: true\n", "rules[0].overridable", "unknown field"),
        ("pack: test_pack\ntitle: T\njurisdiction: XX\nrules:\n  - id: cap\n    kind: frequency_cap"
         "\n    summary: s\n    citation: c\n    max_calls: 0\n    period_days: 7\n",
         "rules[0].max_calls", "between 1 and"),
        ("pack: test_pack\ntitle: T\njurisdiction: XX\nrules:\n  - id: h\n    kind: holiday_block"
         "\n    summary: s\n    citation: c\n    country: QQ\n", "rules[0].country",
         "no holiday calendar"),
        ("pack: test_pack\ntitle: T\njurisdiction: XX\nrules: []\n", "rules", "at least one rule"),
        ("- just\n- a list\n", "", "must be a mapping"),
        ("pack: [unclosed\n", "", "not valid YAML"),
    ],
)  # fmt: skip
def test_malformed_pack_names_file_field_and_problem(text: str, field: str, problem: str) -> None:
    err = _error(text)
    assert err.file == "test_pack.yaml"
    assert err.field == field, str(err)
    assert problem in err.problem, str(err)
    assert str(err).startswith("test_pack.yaml: ")


def test_unknown_pack_name_refuses_to_start() -> None:
    with pytest.raises(PackError) as info:
        load_rules(["us_federal", "atlantis"])
    assert info.value.file == "atlantis.yaml"
    assert "unknown pack 'atlantis'" in info.value.problem


def test_no_pack_refuses_to_start() -> None:
    with pytest.raises(PackError, match="no rule pack"):
        load_rules([])


def test_malformed_file_in_pack_dir_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "test_pack.yaml").write_text(GOOD.replace("title: Test", "title: [1"))
    with pytest.raises(PackError) as info:
        load_rules(["test_pack"], pack_dir=tmp_path)
    assert info.value.file.endswith("test_pack.yaml")


def test_rule_ids_must_be_unique_across_packs(tmp_path: Path) -> None:
    (tmp_path / "test_pack.yaml").write_text(GOOD)
    (tmp_path / "twin.yaml").write_text(GOOD.replace("pack: test_pack", "pack: twin"))
    with pytest.raises(PackError, match="also used by pack test_pack"):
        load_rules(["test_pack", "twin"], pack_dir=tmp_path)


def test_default_packs_by_country_and_state() -> None:
    assert default_pack_names({"CO"}, set()) == ["co"]
    assert default_pack_names({"MX"}, set()) == ["mx"]  # mx_profeco is opt-in
    assert set(default_pack_names({"US"}, {("US", "MA")})) == {"us_federal", "us_ma"}
    assert default_pack_names({"US"}, {("US", "NY")}) == ["us_federal"]
    assert default_pack_names({"FR"}, set()) == []


def test_override_max_days_is_capped_like_the_other_day_counts() -> None:
    base = GOOD.replace(
        "    hours:",
        "    overridable: true\n    override_citation: Test Act s. 2\n"
        "    override_max_days: {n}\n    hours:",
    )
    assert parse_pack(base.format(n=366), "t.yaml").rules[0].override_max_days == 366
    for n in (99999999999, 367, 0, -1):
        with pytest.raises(PackError) as info:
            parse_pack(base.format(n=n), "t.yaml")
        assert info.value.field == "rules[0].override_max_days"
        assert "between 1 and 366" in info.value.problem


def test_a_missing_or_empty_pack_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="no such pack directory"):
        available_packs(tmp_path / "nope")
    with pytest.raises(PackError, match="no rule packs"):
        available_packs(tmp_path)
    with pytest.raises(PackError, match="no such pack directory"):
        load_rules(["us_federal"], pack_dir=tmp_path / "nope")


def test_a_pack_file_that_is_not_utf8_is_a_pack_error(tmp_path: Path) -> None:
    (tmp_path / "test_pack.yaml").write_bytes(b'pack: "caf\xe9"\n')
    with pytest.raises(PackError, match="not UTF-8 text"):
        load_rules(["test_pack"], pack_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("title: &t Test\n", "anchors and aliases are not allowed (line 2)"),
        ('title: !foo "x"\n', "tags such as '!foo' are not allowed (line 2)"),
        ("title: 2026-13-45\n", "is not a valid timestamp (line 2)"),
        ("title: =\n", "is not a plain YAML value (line 2)"),
    ],
)
def test_yaml_the_strict_reader_refuses_is_a_pack_error(text: str, problem: str) -> None:
    with pytest.raises(PackError) as info:
        parse_pack(GOOD.replace("title: Test\n", text), "t.yaml")
    assert problem in info.value.problem
