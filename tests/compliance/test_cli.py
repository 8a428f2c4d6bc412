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
