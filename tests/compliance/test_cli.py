"""``puente compliance``: check, audit, packs, validate, as operators use them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compliance import ComplianceGate
from compliance.cli import main
from tests.compliance import _seed


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    rc = main(["check", *args])
    out = capsys.readouterr()
    return rc, json.loads(out.out) if out.out.strip() else {"stderr": out.err}


def test_colombian_number_gets_colombia_and_a_sunday_waits_for_monday(capsys) -> None:
    # Sunday 2026-11-29 10:00 in Bogota (UTC-5, no DST)
    rc, d = check(capsys, "--phone", "+573001234567", "--at", "2026-11-29T15:00:00Z")
    assert rc == 1
    assert d["packs"] == ["co"]
    assert d["allowed"] is False
    assert {r["code"] for r in d["reasons"]} == {"OUTSIDE_WINDOW"}
    assert d["reasons"][0]["citation"].startswith("Ley 2300 de 2023")
    assert d["next_allowed_at"] == "2026-11-30T12:00:00Z"  # Monday 07:00 Bogota
    assert d["number"] == "+57******4567"  # never the whole number


def test_us_number_gets_federal_plus_the_address_state(capsys) -> None:
    # Tuesday 2026-11-24 10:00 in Boston
    rc, d = check(
        capsys,
        "--phone",
        "+16175550123",
        "--address",
        "country=US,state=MA",
        "--at",
        "2026-11-24T15:00:00Z",
    )
    assert rc == 0
    assert d["allowed"] is True
    assert d["packs"] == ["us_federal", "us_ma"]
    assert d["timezones"] == ["America/New_York"]


def test_us_window_respects_every_candidate_zone(capsys) -> None:
    # A New York number, an address in California: 08:30 in New York is 05:30 in California.
    rc, d = check(
        capsys,
        "--phone",
        "+12125550123",
        "--address",
        "country=US,state=CA",
        "--packs",
        "us_federal",
        "--at",
        "2026-11-24T13:30:00Z",
    )
    assert rc == 1
    assert sorted(d["timezones"]) == ["America/Los_Angeles", "America/New_York"]
    assert d["next_allowed_at"] == "2026-11-24T16:00:00Z"  # 08:00 in Los Angeles


def test_invalid_number_is_a_denial_not_an_error(capsys) -> None:
    rc, d = check(capsys, "--phone", "+1555", "--at", "2026-11-24T15:00:00Z")
    assert rc == 1
    assert d["reasons"][0]["code"] == "INVALID_NUMBER"
    rc, d = check(capsys, "--phone", "banana", "--packs", "co", "--at", "2026-11-24T15:00:00Z")
    assert rc == 1
    assert "INVALID_NUMBER" in {r["code"] for r in d["reasons"]}


def test_usage_errors_name_what_was_wrong(capsys) -> None:
    rc, d = check(
        capsys, "--phone", "+573001234567", "--packs", "nope", "--at", "2026-11-24T15:00Z"
    )
    assert rc == 2
    assert "unknown pack 'nope'" in d["stderr"]
    rc, d = check(capsys, "--phone", "+573001234567", "--at", "2026-11-24T15:00")
    assert rc == 2
    assert "needs a UTC offset" in d["stderr"]
    rc, d = check(
        capsys, "--phone", "+573001234567", "--address", "planet=mars", "--at", "2026-11-24T15:00Z"
    )
    assert rc == 2
    assert "planet=mars" in d["stderr"]


def test_packs_lists_citations(capsys) -> None:
    assert main(["packs", "--json"]) == 0
    packs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    names = {p["pack"] for p in packs}
    assert {"us_federal", "us_ma", "us_wa", "us_fl", "mx", "co", "es", "pe", "cl"} <= names
    assert all(r["citation"] for p in packs for r in p["rules"])


def test_validate_names_the_file_and_the_field(tmp_path: Path, capsys) -> None:
    assert main(["validate"]) == 0
    shipped = capsys.readouterr().out
    assert shipped.count("ok ") >= 9
    bad = tmp_path / "zz.yaml"
    bad.write_text("name: zz\ntitle: Bad\njurisdiction: ZZ\nrules:\n  - id: w\n    kind: nope\n")
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("INVALID")
    assert "zz.yaml" in out


async def test_audit_shows_stored_decisions_with_reasons(
    db_pool, database_url: str, monkeypatch, capsys
) -> None:
    async with db_pool.acquire() as conn:
        seeded = await _seed.person(
            conn, country="CO", numbers=(("+573001234567", "mobile"),), debts=1
        )
    gate = ComplianceGate(db_pool)
    sunday = datetime(2026, 11, 29, 15, tzinfo=UTC)
    denied = await gate.check_and_reserve(
        person_id=seeded.person_id,
        debt_ids=seeded.debt_ids,
        phone=seeded.numbers[0],
        channel="voice",
        packs=["co"],
        now=sunday,
        attempt_id=uuid.uuid4(),
    )
    assert not denied.allowed
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    # The CLI runs its own event loop, as it does under the console script: give it a thread.
    assert (
        await asyncio.to_thread(main, ["audit", "--person", str(seeded.person_id), "--json"]) == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1
    assert rows[0]["allowed"] is False
    assert rows[0]["reasons"][0]["code"] == "OUTSIDE_WINDOW"
    assert rows[0]["e164"] == "+57******4567"
    assert await asyncio.to_thread(main, ["audit", "--person", str(seeded.person_id)]) == 0
    text = capsys.readouterr().out
    assert "DENIED" in text
    assert "Ley 2300 de 2023" in text


async def test_audit_of_a_person_who_does_not_exist_says_so(
    db_pool, database_url: str, monkeypatch, capsys
) -> None:
    # "no decisions stored" would read as "never called" for a mistyped id.
    missing = await db_pool.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM persons")
    async with db_pool.acquire() as conn:
        quiet = await _seed.person(conn, country="CO", numbers=(("+573001234568", "mobile"),))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["audit", "--person", str(missing)]) == 2
    assert f"no person {missing}" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["audit", "--person", str(quiet.person_id)]) == 0
    assert f"no decisions stored for person {quiet.person_id}" in capsys.readouterr().out


def test_a_mistyped_stated_zone_is_refused_not_dropped(capsys) -> None:
    rc, d = check(
        capsys,
        "--phone", "+12125551234", "--at", "2026-03-10T13:30Z",
        "--address", "tz=America/Los_Angles",
    )  # fmt: skip
    assert rc == 2
    assert "--address tz: unknown time zone 'America/Los_Angles'" in d["stderr"]
    rc, d = check(
        capsys,
        "--phone", "+12125551234", "--at", "2026-03-10T13:30Z",
        "--address", "tz=America/Los_Angeles",
    )  # fmt: skip
    assert rc == 1
    assert d["allowed"] is False


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+12:00", "2201-01-01T00:00Z",
        # (in range as written, not in UTC)
        "2200-12-31T23:00-05:00", "1970-01-01T00:30+01:00",
    ],
)  # fmt: skip
def test_at_outside_the_supported_years_is_a_usage_error(capsys, when: str) -> None:
    rc, d = check(capsys, "--phone", "+12125551234", "--at", when)
    assert rc == 2
    assert "outside the supported years 1970-2200" in d["stderr"]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--debt", "99999999999999999999"], "argument --debt: 99999999999999999999 is not an id"),
        (["--debt", "0"], "argument --debt: 0 is not an id"),
        (["--margin-s", "nan"], "argument --margin-s: 'nan' is not a finite number"),
        (["--margin-s", "inf"], "argument --margin-s: 'inf' is not a finite number"),
        (["--margin-s", "-5"], "argument --margin-s: -5 is not between 0 and 3600"),
    ],
)
def test_bad_numbers_are_usage_errors(capsys, args: list[str], problem: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--phone", "+12125551234", "--at", "2026-03-10T13:30Z", *args])
    assert info.value.code == 2
    assert problem in capsys.readouterr().err


def test_audit_refuses_ids_and_limits_out_of_range(capsys) -> None:
    for args in (["--person", "99999999999999999999"], ["--person", "1", "--limit", "-1"]):
        with pytest.raises(SystemExit) as info:
            main(["audit", *args])
        assert info.value.code == 2
        assert "argument --" in capsys.readouterr().err


def test_a_missing_or_empty_pack_dir_is_refused(tmp_path: Path, capsys) -> None:
    for action in ("packs", "validate"):
        assert main([action, "--pack-dir", str(tmp_path / "nope")]) == 2
        assert "no such pack directory" in capsys.readouterr().err
        assert main([action, "--pack-dir", str(tmp_path)]) == 2
        assert "no rule packs" in capsys.readouterr().err


def test_validate_reports_a_file_that_is_not_utf8(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_bytes(b'pack: "caf\xe9"\n')
    assert main(["validate", str(bad)]) == 1
    assert "INVALID" in capsys.readouterr().out
    assert main(["validate", "--pack-dir", str(tmp_path)]) == 1
    assert "not UTF-8 text" in capsys.readouterr().out


def test_validate_refuses_an_alias_bomb_quickly(tmp_path: Path, capsys) -> None:
    lines = ["pack: laughs", "title: t", "jurisdiction: US-FL", "l0: &l0 [x,x,x,x,x,x,x,x,x,x]"]
    for i in range(1, 8):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]")
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text("\n".join([*lines, "rules: []"]) + "\n")
    assert main(["validate", str(bomb)]) == 1
    assert "anchors and aliases are not allowed (line 4)" in capsys.readouterr().out


def test_validate_refuses_a_custom_tag(tmp_path: Path, capsys) -> None:
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text('pack: tagged\ntitle: !foo "x"\njurisdiction: US-FL\nrules: []\n')
    assert main(["validate", str(tagged)]) == 1
    assert "tags such as '!foo' are not allowed (line 2)" in capsys.readouterr().out
