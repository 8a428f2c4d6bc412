"""Test-wide fixtures: one real PostgreSQL server per test session, a fresh database per module.

By default the embedded server of :mod:`db.local` runs in ``.puente/pg-test`` (separate from the
demo's); ``PUENTE_TEST_DATABASE_URL`` points the tests at an existing server instead (the role
needs CREATEDB). Every test module gets its own database, cloned from a migrated template.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from db import LocalPostgres, migrate

ROOT = Path(__file__).resolve().parent.parent


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """An admin URL (database ``postgres``) on the session's PostgreSQL server."""
    external = os.environ.get("PUENTE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = LocalPostgres(base_dir=ROOT / ".puente" / "pg-test")
    info = server.start()
    try:
        yield info.url("postgres")
    finally:
        if server.started_by_us:
            server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """The name of a database with every migration applied, used as a template."""
    name = f"puente_tpl_{secrets.token_hex(4)}"

    async def setup() -> None:
        await _admin(pg_admin_url, f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(_with_database(pg_admin_url, name), timeout=10)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(setup())
    yield name
    asyncio.run(_admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def database_url(
    pg_admin_url: str, pg_template: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh, migrated database for this test module; dropped afterwards."""
    stem = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.rsplit(".", 1)[-1].lower())[:40]
    name = f"t_{stem}_{secrets.token_hex(3)}"
    asyncio.run(_admin(pg_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _with_database(pg_admin_url, name)
    asyncio.run(_admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no migrations applied; dropped afterwards."""
    name = f"t_empty_{secrets.token_hex(4)}"
    asyncio.run(_admin(pg_admin_url, f'CREATE DATABASE "{name}"'))
    yield _with_database(pg_admin_url, name)
    asyncio.run(_admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A small asyncpg pool on the module's database, for one test."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10, timeout=10)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()
