"""The service's own role (``puente db grant ROLE``): it reads and writes rows, and cannot undo
the history the ledger keeps; ``puente run`` works as that role."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bench.leads import write_file
from db import (
    DatabaseSettings,
    GrantError,
    MigrationError,
    create_pool,
    grant_service_role,
    history_at_risk,
    migrate,
)
from db.migrate import MIGRATIONS_DIR
from dialer.importer import import_leads
from tests._triggers import fetch_until
from tests.conftest import _admin
from tests.dialer._floor import make_campaign
from tests.dialer._service import (
    SIM_WRAPUP_S,
    service_env,
    settled,
    start_pbx,
    start_service,
    until,
    write_test_pack,
)


def _as(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


@pytest.fixture(scope="module")
def service_role(database_url: str, pg_admin_url: str) -> Iterator[tuple[str, str]]:
    """A login role without rights (made on the test server), and its URL to the module's
    database; dropped afterwards."""
    role, password = f"svc_{secrets.token_hex(4)}", secrets.token_hex(12)
    try:
        asyncio.run(_admin(pg_admin_url, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    except asyncpg.InsufficientPrivilegeError:
        pytest.skip("the test server's role may not create roles (CREATEROLE)")
    yield role, _as(database_url, role, password)
    asyncio.run(_admin(database_url, f"DROP OWNED BY {role}"))  # its grants, here
    asyncio.run(_admin(pg_admin_url, f"DROP ROLE {role}"))


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_role_writes_rows_but_cannot_undo_the_history(
    owner: asyncpg.Connection, service_role: tuple[str, str]
) -> None:
    role, url = service_role
    svc = await asyncpg.connect(url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # nothing before the grant
            await svc.fetchval("SELECT count(*) FROM leads")
        with pytest.raises(
            MigrationError, match=rf"give it the service's rights first .*grant {role}"
        ):
            await migrate(svc)  # a service started before the grant says what to do
        statements = await grant_service_role(owner, role)
        assert not any("TRUNCATE" in s and s.startswith("GRANT") for s in statements)
        assert await migrate(svc) == []  # the service's start: nothing to apply, no error
        await svc.execute("INSERT INTO audit_log (actor, action) VALUES ('svc', 'test')")
        assert await svc.fetchval("SELECT count(*) FROM audit_log WHERE actor = 'svc'") == 1
        with pytest.raises(asyncpg.RaiseError, match="append-only"):  # the trigger, as before
            await svc.execute("UPDATE audit_log SET action = 'x' WHERE actor = 'svc'")
        for undo in (
            "TRUNCATE audit_log",
            "TRUNCATE compliance_decisions",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
            "ALTER TABLE compliance_attempts DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_log_no_change ON audit_log",
            "DROP TABLE compliance_outcomes",
            "CREATE TABLE mine (x int)",
            "INSERT INTO schema_migrations (version, name, sha256) VALUES (9999, 'x', 'x')",
            "DELETE FROM schema_migrations",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await svc.execute(undo)
        # A table a later migration makes (as the owner) is the role's to use at once.
        await owner.execute("CREATE TABLE later_table (id bigserial PRIMARY KEY, x int)")
        try:
            await svc.execute("INSERT INTO later_table (x) VALUES (1)")
            assert await svc.fetchval("SELECT x FROM later_table") == 1
        finally:
            await owner.execute("DROP TABLE later_table")
        # What the import needs beyond rows: its temporary table, and fresh statistics (ANALYZE
        # is the owner's: the role runs it through the owner's function).
        await svc.execute("CREATE TEMP TABLE t (x int)")
        last = "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'leads'"
        before = await owner.fetchval(last)
        await svc.execute("SELECT analyze_lead_tables()")
        await fetch_until(  # (statistics reach other sessions a moment later)
            owner, f"SELECT true FROM ({last}) s WHERE last_analyze IS DISTINCT FROM $1", before
        )
    finally:
        await svc.close()


async def test_a_pending_migration_stops_the_role_and_says_who_applies_it(
    owner: asyncpg.Connection, service_role: tuple[str, str], tmp_path: Path
) -> None:
    role, url = service_role
    await grant_service_role(owner, role)
    d = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, d)
    (d / "9999_extra.sql").write_text("CREATE TABLE extra (x int);\n", encoding="utf-8")
    svc = await asyncpg.connect(url)
    try:
        with pytest.raises(
            MigrationError,
            match=rf"9999_extra.sql is not applied, and role '{role}' may not change the schema"
            r" .*as the database's owner",
        ):
            await migrate(svc, d)
    finally:
        await svc.close()
    assert await owner.fetchval("SELECT count(*) FROM schema_migrations WHERE version = 9999") == 0
    assert await owner.fetchval("SELECT to_regclass('extra')") is None


async def test_the_grant_refuses_roles_that_could_undo_the_history(
    owner: asyncpg.Connection, service_role: tuple[str, str]
) -> None:
    me = await owner.fetchval("SELECT current_user")
    if not await owner.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1", me):
        pytest.skip("the test server's role is no superuser")  # (PUENTE_TEST_DATABASE_URL)
    with pytest.raises(GrantError, match=f"role '{me}' is a superuser"):
        await grant_service_role(owner, me)
    with pytest.raises(GrantError, match="role 'nobody_here' does not exist: create it first"):
        await grant_service_role(owner, "nobody_here")
    with pytest.raises(GrantError, match="1 to 63 characters"):
        await grant_service_role(owner, "")
    role, url = service_role
    await owner.execute(f"GRANT {me} TO {role}")  # a member of the owner's role
    try:
        with pytest.raises(
            GrantError, match=f"role '{role}' has the rights of '{me}', the schema's owner"
        ):
            await grant_service_role(owner, role)
    finally:
        await owner.execute(f"REVOKE {me} FROM {role}")
    svc = await asyncpg.connect(url)
    try:  # the role itself is not the schema's owner: it cannot hand out rights
        with pytest.raises(GrantError, match=f"role '{role}' does not own the schema"):
            await grant_service_role(svc, role)
    finally:
        await svc.close()


async def test_the_role_imports_leads(
    database_url: str, owner: asyncpg.Connection, service_role: tuple[str, str], tmp_path: Path
) -> None:
    role, url = service_role
    await grant_service_role(owner, role)
    admin = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        _, code = await make_campaign(admin, tmp_path, mode="progressive", leads=1)
    finally:
        await admin.close()
    path = tmp_path / "leads.csv"
    write_file(path, 300, seed=4)
    pool = await create_pool(url, DatabaseSettings(url=url, min_connections=1))
    try:
        s = await import_leads(pool, path, code, errors_path=tmp_path / "e.csv", lanes=2)
    finally:
        await pool.close()
    assert s.rows == s.loaded + s.rejected == 300
    assert s.loaded > 280
    assert (
        await owner.fetchval(
            "SELECT count(*) FROM leads l JOIN campaigns c ON c.id = l.campaign_id"
            " WHERE c.code = $1",
            code,
        )
        == s.leads + 1
    )


async def test_the_risk_to_the_history_is_named(
    database_url: str, owner: asyncpg.Connection, service_role: tuple[str, str]
) -> None:
    me = await owner.fetchval("SELECT current_user")
    if await owner.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1", me):
        assert await history_at_risk(owner) == f"role '{me}' is a superuser"
    role, url = service_role
    await grant_service_role(owner, role)
    svc = await asyncpg.connect(url)
    try:
        assert await history_at_risk(svc) is None
        await owner.execute(f"GRANT {me} TO {role}")
        try:
            assert await history_at_risk(svc) == (
                f"role '{role}' has the rights of '{me}', the schema's owner"
            )
        finally:
            await owner.execute(f"REVOKE {me} FROM {role}")
    finally:
        await svc.close()


async def test_the_grant_waits_for_the_migrations(
    empty_database_url: str, service_role: tuple[str, str], tmp_path: Path
) -> None:
    role, _ = service_role
    d = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, d)
    conn = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(GrantError, match="not migrated: run `puente db migrate` first"):
            await grant_service_role(conn, role)
        last = max(d.glob("*.sql"))
        held = last.rename(tmp_path / last.name)
        await migrate(conn, d)
        held.rename(last)
        with pytest.raises(
            GrantError, match=rf"migration {last.stem} is pending: .*`puente db migrate` first"
        ):
            await grant_service_role(conn, role)
    finally:
        await conn.close()


def test_the_command_names_what_is_wrong() -> None:
    run = [sys.executable, "-m", "puente", "db"]
    r = subprocess.run([*run, "grant"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "puente db grant: name the service's role (puente db grant ROLE)" in r.stderr
    r = subprocess.run([*run, "status", "someone"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "puente db status: takes no role (only grant does)" in r.stderr


async def test_the_service_runs_as_the_role(
    database_url: str,
    owner: asyncpg.Connection,
    service_role: tuple[str, str],
    tmp_path: Path,
) -> None:
    role, url = service_role
    await grant_service_role(owner, role)
    packs = tmp_path / "packs"
    write_test_pack(packs)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    cid, _ = await make_campaign(
        pool, tmp_path, mode="progressive", leads=6, queue_wrapup_s=SIM_WRAPUP_S
    )
    await pool.execute("UPDATE campaigns SET compliance_packs = '{anytime}' WHERE id = $1", cid)
    pbx = await start_pbx(
        {
            "seed": 3,
            "outcomes": {"human": 0.5, "busy": 0.5},
            "ring_s": {"dist": "fixed", "value": 0.3},
            "talk_s": {"dist": "fixed", "value": 0.5},
        },
        agents=2,
    )
    log = tmp_path / "svc.log"
    proc = await start_service(service_env(url, pbx, node="n0", pbx_name="sim0", packs=packs), log)
    try:

        async def dialed_and_settled() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM call_attempts WHERE campaign_id = $1", cid
            )
            return n >= 4 and await settled(pool, cid, [pbx])

        await until(dialed_and_settled, 60, "the service, as its role, to dial and settle")
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        text = log.read_text()
        assert proc.returncode == 0, text[-3000:]
        assert "permission denied" not in text, text[-3000:]
        assert "could disable the triggers" not in text  # a role of its own: no warning
        # What it wrote, it wrote as the role: the ledger has its decisions.
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM compliance_decisions WHERE attempt_id IN"
                " (SELECT id FROM call_attempts WHERE campaign_id = $1)",
                cid,
            )
            >= 4
        )
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await pbx.sim.stop()
        await pool.close()


def test_the_command_grants(database_url: str, service_role: tuple[str, str]) -> None:
    role, _ = service_role
    env = {**os.environ, "PUENTE_DATABASE_URL": database_url}
    run = [sys.executable, "-m", "puente", "db", "grant"]
    r = subprocess.run([*run, role], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert f"role '{role}' may now read and write rows" in r.stdout
    r = subprocess.run([*run, "nobody_here"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1
    assert "puente db grant: role 'nobody_here' does not exist" in r.stderr
