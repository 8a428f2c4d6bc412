"""The migration runner against the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from db import MigrationError, discover, migrate, status
from db.migrate import MIGRATIONS_DIR


def _copy_migrations(tmp_path: Path) -> Path:
    d = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, d)
    return d


async def test_shipped_migrations_apply_once_and_report_status(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        before = await status(conn)
        assert before
        assert all(s.state == "pending" for s in before)
        applied = await migrate(conn)
        assert [m.version for m in applied] == [m.version for m in discover()]
        assert await migrate(conn) == []  # idempotent
        after = await status(conn)
        assert all(s.state == "applied" and s.applied_at is not None for s in after)
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        for t in (
            "persons",
            "debts",
            "phone_numbers",
            "campaigns",
            "leads",
            "call_attempts",
            "dispositions",
            "agents",
            "ivr_sessions",
            "promises",
            "payments",
            "users",
            "audit_log",
            "schema_migrations",
        ):
            assert t in tables
    finally:
        await conn.close()


async def test_editing_an_applied_migration_is_an_error(
    empty_database_url: str, tmp_path: Path
) -> None:
    d = _copy_migrations(tmp_path)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, d)
        first = sorted(d.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- a harmless-looking edit\n")
        with pytest.raises(MigrationError, match="edited after it was applied"):
            await migrate(conn, d)
        assert (await status(conn, d))[0].state == "modified"
    finally:
        await conn.close()


async def test_a_failing_migration_rolls_back_whole_and_names_the_file(
    empty_database_url: str, tmp_path: Path
) -> None:
    d = _copy_migrations(tmp_path)
    (d / "9000_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n"
    )
    conn = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(MigrationError, match=r"9000_broken\.sql"):
            await migrate(conn, d)
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version=9000") == 0
        states = {s.version: s.state for s in await status(conn, d)}
        assert states[9000] == "pending"
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("filename", "problem"),
    [("12_short.sql", r"NNNN_name\.sql"), ("0001_dup.sql", "also used by")],
)
def test_bad_migration_file_names_are_refused(tmp_path: Path, filename: str, problem: str) -> None:
    d = _copy_migrations(tmp_path)
    (d / filename).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=problem):
        discover(d)


async def test_concurrent_runners_apply_each_migration_exactly_once(
    empty_database_url: str,
) -> None:
    conns = [await asyncpg.connect(empty_database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = [m.version for r in results for m in r]
        assert sorted(applied) == [m.version for m in discover()]
    finally:
        for c in conns:
            await c.close()


async def test_audit_log_is_append_only(db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("INSERT INTO audit_log (actor, action) VALUES ('test', 'created')")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db_pool.execute("UPDATE audit_log SET actor = 'someone else'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db_pool.execute("DELETE FROM audit_log")


@pytest.mark.parametrize(
    "table", ["audit_log", "compliance_decisions", "compliance_attempts", "compliance_outcomes"]
)
async def test_the_ledgers_refuse_truncate_too(db_pool: asyncpg.Pool, table: str) -> None:
    # (row triggers do not fire on TRUNCATE: one statement emptied the history)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db_pool.execute(f"TRUNCATE {table} CASCADE")


async def test_agents_logged_in_without_a_campaign_are_logged_out_once(
    empty_database_url: str, tmp_path: Path
) -> None:
    # 0016: before 0015 a ready agent was in every campaign's queue, with no campaign; each
    # pacer removes a logged-out member, so logging them out puts every queue right.
    before = tmp_path / "before"
    before.mkdir()
    for m in discover():
        if m.version < 16:
            shutil.copy(MIGRATIONS_DIR / m.path.name, before)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, before)
        cid = await conn.fetchval(
            "INSERT INTO campaigns (code, name) VALUES ('c', 'C') RETURNING id"
        )
        agents = {}
        for code, campaign, state in (("free", None, "ready"), ("paused", None, "paused"),
                                      ("chosen", cid, "ready"), ("out", None, "logged_out"),
                                      ("new", None, None)):  # fmt: skip
            agents[code] = await conn.fetchval(
                "INSERT INTO agents (code, name, interface, campaign_id) VALUES ($1, $1, $2, $3)"
                " RETURNING id",
                code, f"PJSIP/{code}", campaign,
            )  # fmt: skip
            if state is not None:
                await conn.execute(
                    "INSERT INTO agent_states (agent_id, state, at) VALUES ($1, $2, now() - "
                    "interval '1 hour')",
                    agents[code], state,
                )  # fmt: skip
        await migrate(conn)
        latest = {
            code: await conn.fetchval(
                "SELECT state FROM agent_states WHERE agent_id = $1 ORDER BY at DESC, id DESC"
                " LIMIT 1",
                agent_id,
            )
            for code, agent_id in agents.items()
        }
    finally:
        await conn.close()
    assert latest == {"free": "logged_out", "paused": "logged_out", "chosen": "ready",
                      "out": "logged_out", "new": None}  # fmt: skip


def _held_back(tmp_path: Path, first: str) -> tuple[Path, list[Path], Callable[[], None]]:
    """A copy of the migrations without ``first`` and those after it; ``release()`` puts them
    back (to test what a migration does to rows written before it)."""
    d = _copy_migrations(tmp_path)
    later = sorted(p for p in d.glob("*.sql") if p.name >= first)
    held = tmp_path / "held"
    held.mkdir()
    for p in later:
        p.rename(held / p.name)

    def release() -> None:
        for p in later:
            (held / p.name).rename(p)

    return d, later, release


async def test_0018_mends_abandoned_rows_without_the_flag_then_refuses_them(
    empty_database_url: str, tmp_path: Path
) -> None:
    d, later, release = _held_back(tmp_path, "0018")
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, d)
        insert = (
            "INSERT INTO call_attempts (id, node, pbx, state, disposition, abandoned)"
            " VALUES (gen_random_uuid(), 'n', 'p', CASE WHEN $1::text IS NULL THEN 'ringing'"
            " ELSE 'final' END, $1, $2)"
        )
        await conn.execute(insert, "abandoned", False)  # as a hand-made row could be, before
        await conn.execute(insert, "agent", False)
        release()
        assert [m.version for m in await migrate(conn, d)] == [int(p.name[:4]) for p in later]
        rows = await conn.fetch(
            "SELECT disposition, abandoned FROM call_attempts ORDER BY disposition"
        )
        assert [tuple(r) for r in rows] == [("abandoned", True), ("agent", False)]
        with pytest.raises(asyncpg.CheckViolationError, match="call_attempts_abandoned_flag"):
            await conn.execute(insert, "abandoned", False)
        await conn.execute(insert, "agent", True)  # reached an agent after the 2 s rule failed
        await conn.execute(insert, None, False)  # still ringing
    finally:
        await conn.close()


async def test_0019_gives_imported_persons_their_creditor_and_scopes_references(
    empty_database_url: str, tmp_path: Path
) -> None:
    d, _, release = _held_back(tmp_path, "0019")
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, d)
        a, b = [
            await conn.fetchval(
                "INSERT INTO creditors (code, name, public_name, callback_number, currency)"
                " VALUES ($1, $1, $1, '+525500000000', 'MXN') RETURNING id",
                code,
            )
            for code in ("ca", "cb")
        ]
        person = "INSERT INTO persons (external_ref, full_name) VALUES ($1, $1) RETURNING id"
        debt = (
            "INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)"
            " VALUES ($1, $2, $3, 100, 'MXN')"
        )
        only_a, merged = await conn.fetchval(person, "p1"), await conn.fetchval(person, "p2")
        await conn.execute(debt, only_a, a, "d1")
        await conn.execute(debt, merged, a, "d2")
        await conn.execute(debt, merged, b, "d3")  # merged across creditors before 0019
        release()
        await migrate(conn, d)
        rows = await conn.fetch("SELECT external_ref, creditor_id FROM persons ORDER BY 1")
        assert [tuple(r) for r in rows] == [("p1", a), ("p2", None)]
        # The same reference under another creditor is another person; twice under one is not.
        await conn.execute(
            "INSERT INTO persons (creditor_id, external_ref, full_name) VALUES ($1, 'p1', 'x')",
            b,
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO persons (creditor_id, external_ref, full_name) VALUES ($1, 'p1', 'y')",
                a,
            )
    finally:
        await conn.close()


async def test_blocks_consents_and_overrides_keep_their_history(db_pool: asyncpg.Pool) -> None:
    # (0024) they change only by being revoked, once; a consent never changes
    person = await db_pool.fetchval(
        "INSERT INTO persons (full_name, language) VALUES ('Ana', 'es') RETURNING id"
    )
    phone = await db_pool.fetchval(
        "INSERT INTO phone_numbers (person_id, e164, kind, source)"
        " VALUES ($1, '+525512345678', 'mobile', 'test') RETURNING id",
        person,
    )
    block = await db_pool.fetchval(
        "INSERT INTO contact_blocks (kind, person_id, channel, source)"
        " VALUES ('cease', $1, 'voice', 'test') RETURNING id",
        person,
    )
    await db_pool.execute(
        "INSERT INTO consents (phone_id, channel, granted, source, recorded_at)"
        " VALUES ($1, 'autodialed_voice', true, 'test', now())",
        phone,
    )
    refused = [
        "UPDATE contact_blocks SET kind = 'dnc'",
        "UPDATE contact_blocks SET revoked_at = now(), source = 'other'",
        "DELETE FROM contact_blocks",
        "TRUNCATE contact_blocks",
        "UPDATE consents SET granted = false",
        "DELETE FROM consents",
        "TRUNCATE consents CASCADE",
        "TRUNCATE compliance_overrides",
    ]
    for sql in refused:
        with pytest.raises(asyncpg.RaiseError, match="keeps its history"):
            await db_pool.execute(sql)
    await db_pool.execute("UPDATE contact_blocks SET revoked_at = now() WHERE id = $1", block)
    with pytest.raises(asyncpg.RaiseError, match="keeps its history"):  # once
        await db_pool.execute("UPDATE contact_blocks SET revoked_at = now() WHERE id = $1", block)


async def test_0033_refuses_a_lead_on_another_persons_debt_and_names_one(
    empty_database_url: str, tmp_path: Path
) -> None:
    d, later, release = _held_back(tmp_path, "0033")
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, d)
        cred = await conn.fetchval(
            "INSERT INTO creditors (code, name, public_name, callback_number, currency)"
            " VALUES ('c', 'C', 'C', '+525500000000', 'MXN') RETURNING id"
        )
        camp, other = [
            await conn.fetchval(
                "INSERT INTO campaigns (code, name, creditor_id) VALUES ($1, $1, $2) RETURNING id",
                code,
                cred,
            )
            for code in ("k", "l")
        ]
        ana, bea = [
            await conn.fetchval(
                "INSERT INTO persons (creditor_id, external_ref, full_name) VALUES ($1, $2, $2)"
                " RETURNING id",
                cred,
                name,
            )
            for name in ("ana", "bea")
        ]
        debt = (
            "INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)"
            " VALUES ($1, $2, $3, 100, 'MXN') RETURNING id"
        )
        anas, beas = (
            await conn.fetchval(debt, ana, cred, "a1"),
            await conn.fetchval(debt, bea, cred, "b1"),
        )
        lead = (
            "INSERT INTO leads (campaign_id, person_id, debt_id) VALUES ($1, $2, $3) RETURNING id"
        )
        await conn.execute(lead, camp, ana, anas)
        wrong = await conn.fetchval(lead, camp, ana, beas)  # Ana called about Bea's debt
        release()
        with pytest.raises(MigrationError, match=rf"1 lead\(s\) .* \(lead id {wrong} is one\)"):
            await migrate(conn, d)
        assert (await status(conn, d))[-1].state == "pending"  # nothing half done
        await conn.execute("UPDATE leads SET person_id = $1 WHERE id = $2", bea, wrong)
        assert [m.version for m in await migrate(conn, d)] == [int(p.name[:4]) for p in later]
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="leads_debt_person_fkey"):
            await conn.execute(lead, other, bea, anas)
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="leads_debt_person_fkey"):
            await conn.execute("UPDATE leads SET person_id = $1 WHERE id = $2", ana, wrong)
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="leads_debt_person_fkey"):
            await conn.execute("DELETE FROM debts WHERE id = $1", beas)
        await conn.execute(lead, other, bea, beas)
    finally:
        await conn.close()
