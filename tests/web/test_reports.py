"""The daily report (API and CLI) and the users CLI."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.web._api_support import account, attempt, campaign_row, debtor, served, unique
from web import Invalid
from web import cli as web_cli
from web._passwords import verify_password
from web._values import day_bounds

DAY = "2026-11-02"
AT = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


async def seed_day(pool: asyncpg.Pool) -> str:
    """One campaign's day: five calls, one promise, payments, decisions; and noise around it."""
    d = await debtor(pool)
    campaign_id, code = await campaign_row(pool, d.creditor_id, state="running")
    agent_id = await pool.fetchval(
        "INSERT INTO agents (code, name, interface) VALUES ($1, 'A', $1) RETURNING id",
        unique("rep"),
    )
    calls = {}
    for name, disposition in (
        ("talked", "agent"),
        ("dropped", "abandoned"),
        ("ivr", "hangup"),
        ("busy", "busy"),
        ("machine", "machine"),
    ):
        calls[name] = await attempt(
            pool, d, campaign_id, agent_id=agent_id, disposition=disposition, at=AT
        )
    await attempt(pool, d, campaign_id, disposition="agent", at=AT - timedelta(days=1))
    await pool.execute(
        "INSERT INTO dispositions (attempt_id, code, source, agent_id) VALUES ($1, $2, 'agent',"
        " $3), ($4, 'third_party', 'agent', $3)",
        uuid.UUID(calls["talked"]),
        "promise_to_pay",
        agent_id,
        uuid.UUID(calls["dropped"]),
    )
    await pool.execute(
        "INSERT INTO ivr_sessions (id, attempt_id, flow, language, verified) VALUES"
        " ($1, $2, 'collections', 'es', true)",
        uuid.uuid4(),
        uuid.UUID(calls["ivr"]),
    )
    promise_id = await pool.fetchval(
        "INSERT INTO promises (debt_id, attempt_id, source, plan, total_cents,"
        " confirmation_code, created_at) VALUES ($1, $2, 'agent', '[]', 20000, $3, $4)"
        " RETURNING id",
        d.debt_id,
        uuid.UUID(calls["talked"]),
        unique("c")[:16],
        AT,
    )
    for status, amount in (("approved", 5000), ("declined", 7000)):
        await pool.execute(
            "INSERT INTO payments (debt_id, promise_id, idempotency_key, amount_cents,"
            " currency, status, gateway, created_at) VALUES ($1, $2, $3, $4, 'MXN', $5,"
            " 'sandbox', $6)",
            d.debt_id,
            promise_id,
            unique("idem"),
            amount,
            status,
            AT,
        )
    for allowed in (False, False, True):
        await pool.execute(
            "INSERT INTO compliance_decisions (decided_at, person_id, channel, campaign,"
            " allowed) VALUES ($1, $2, 'autodialed_voice', $3, $4)",
            AT,
            d.person_id,
            code,
            allowed,
        )
    return code


EXPECTED = {
    "date": DAY,
    "attempts": "5",
    "contacts": "3",
    "right_party_contacts": "2",
    "promises": "1",
    "promised_cents": "20000",
    "payments": "1",
    "paid_cents": "5000",
    "abandoned": "1",
    "abandon_rate": "0.3333",
    "compliance_denials": "2",
    "currency": "MXN",
}


async def test_daily_report_csv(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    code = await seed_day(db_pool)
    async with served(db_pool) as client:
        r = await client.get(
            f"/api/v1/reports/daily.csv?campaign={code}&date={DAY}", headers=sup.auth
        )
        assert r.status == 200
        assert r.content_type == "text/csv"
        (row,) = list(csv.DictReader(io.StringIO(await r.text())))
        assert row == {**EXPECTED, "campaign": code}
        # Another zone moves the day's bounds: in Tokyo, the five calls (15:00 UTC on the 2nd)
        # fall on the 3rd, and the one of the day before (15:00 UTC on the 1st) on the 2nd.
        r = await client.get(
            f"/api/v1/reports/daily.csv?campaign={code}&date={DAY}&tz=Asia/Tokyo",
            headers=sup.auth,
        )
        (row,) = list(csv.DictReader(io.StringIO(await r.text())))
        assert (row["attempts"], row["contacts"], row["promises"]) == ("1", "1", "0")
        everything = await client.get(f"/api/v1/reports/daily.csv?date={DAY}", headers=sup.auth)
        assert code in await everything.text()
        for query, field in (
            ("", "date"),
            (f"date={DAY}&campaign=nope", "campaign"),
            ("date=2026-13-01", "date"),
            ("date=9999-12-31", "date"),  # the day after overflows
            ("date=0001-01-01&tz=Asia/Tokyo", "date"),  # its start in UTC too
            (f"date={DAY}&tz=Mars/Base", "tz"),
        ):
            r = await client.get(f"/api/v1/reports/daily.csv?{query}", headers=sup.auth)
            assert r.status in (404, 422), query
            assert (await r.json())["field"] == field, query


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente")
    sub = parser.add_subparsers(dest="command", required=True)
    web_cli.register(sub)
    web_cli.register(sub)  # listed twice in _PLUGINS: still fine
    args = parser.parse_args(argv)
    return args.func(args)


def test_reports_and_users_cli(database_url, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)

    async def seed() -> str:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            return await seed_day(pool)
        finally:
            await pool.close()

    code = asyncio.run(seed())
    assert _cli(["reports", "daily", "--campaign", code, "--date", DAY]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row == {**EXPECTED, "campaign": code}
    assert _cli(["reports", "daily", "--campaign", "nope", "--date", DAY]) == 2
    assert "no campaign 'nope'" in capsys.readouterr().err

    name = unique("cli")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-enough-password\n"))
    assert _cli(["users", "add", name, "--role", "supervisor"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert _cli(["users", "add", unique("cli"), "--role", "agent"]) == 2
    assert "at least 8" in capsys.readouterr().err
    assert _cli(["users", "token", name, "--label", "ci"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("pnt_")
    assert token not in out.err
    assert _cli(["users", "disable", name]) == 0
    assert _cli(["users", "disable", "ghost"]) == 2

    async def check() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            user = await conn.fetchrow("SELECT * FROM users WHERE username = $1", name)
            assert user["disabled"]
            assert verify_password("a-long-enough-password", user["password_hash"])
            actions = [
                r["action"]
                for r in await conn.fetch(
                    "SELECT action FROM audit_log WHERE subject = $1 ORDER BY id", f"user:{name}"
                )
            ]
            assert actions == ["user.add", "token.create", "user.disable"]
            details = await conn.fetchval(
                "SELECT string_agg(details::text, ' ') FROM audit_log WHERE subject = $1",
                f"user:{name}",
            )
            assert token not in details
            assert "a-long-enough-password" not in details
        finally:
            await conn.close()

    asyncio.run(check())


@pytest.mark.parametrize("bad", ["2026-02-30", "yesterday", "20260301", "2026-W09-1", "2026-3-1"])
def test_cli_refuses_a_bad_date(bad, capsys) -> None:
    with pytest.raises(SystemExit):
        _cli(["reports", "daily", "--date", bad])
    assert "not a date YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["9999-12-31", "0001-01-01", "1969-12-31"])
def test_cli_refuses_a_date_at_the_calendars_edge(bad, capsys) -> None:
    with pytest.raises(SystemExit):
        _cli(["reports", "daily", "--date", bad, "--tz", "Asia/Tokyo"])
    assert "1970-2200" in capsys.readouterr().err


def test_day_bounds_refuse_the_calendars_edges() -> None:
    for day in (date(9999, 12, 31), date(1, 1, 1)):
        with pytest.raises(Invalid) as e:
            day_bounds(day, ZoneInfo("Asia/Tokyo"))
        assert e.value.field == "date"
