"""The embedded server with a relative directory, and the pool's release policy."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from db import DatabaseSettings, DbError, LocalPostgres, create_pool
from db.pool import connect_error


async def test_relative_directory_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    server = LocalPostgres(base_dir=Path("pg-rel"))
    assert server.requested_dir == tmp_path / "pg-rel"
    info = server.start()
    try:
        conn = await asyncpg.connect(info.url("postgres"))
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        server.stop()


async def test_the_service_gets_a_durable_embedded_server_and_is_told_of_one_that_is_not(
    tmp_path: Path, caplog
) -> None:
    # The demo and the tests run the embedded server without fsync (speed); `puente run`
    # without PUENTE_DATABASE_URL keeps call results and the ledger on it, so it starts it
    # with PostgreSQL's durability, and says so when it finds a fast one running instead.
    from puente.database import database_url

    base = tmp_path / "pg"
    async with database_url(None, embedded_dir=base, apply_migrations=False, durable=True) as u:
        conn = await asyncpg.connect(u)
        settings = {k: await conn.fetchval(f"SHOW {k}") for k in ("fsync", "full_page_writes")}
        await conn.close()
    assert settings == {"fsync": "on", "full_page_writes": "on"}
    assert "for production, give it a server of its own" in caplog.text
    fast = LocalPostgres(base_dir=base)
    info = fast.start()  # the demo's kind, left running
    try:
        conn = await asyncpg.connect(info.url("postgres"))
        assert await conn.fetchval("SHOW fsync") == "off"
        await conn.close()
        caplog.clear()
        async with database_url(None, embedded_dir=base, apply_migrations=False, durable=True):
            pass
        assert "with fsync off: a machine crash can lose call results" in caplog.text
    finally:
        fast.stop()


async def test_a_connection_released_mid_transaction_comes_back_clean(database_url: str) -> None:
    pool = await create_pool(
        database_url, DatabaseSettings(url=database_url, min_connections=1, max_connections=1)
    )
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE leak (x int)")
            assert conn.is_in_transaction()
        async with pool.acquire() as conn:  # the same (only) connection
            assert not conn.is_in_transaction()
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.fetchval("SELECT count(*) FROM leak")
    finally:
        await pool.close()


async def test_the_pools_connections_never_jit_compile(database_url: str) -> None:
    pool = await create_pool(
        database_url, DatabaseSettings(url=database_url, min_connections=1, max_connections=1)
    )
    try:
        assert await pool.fetchval("SHOW jit") == "off"
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PUENTE_DATABASE_MIN_CONNECTIONS": "-1"}, "min_connections"),
        ({"PUENTE_DATABASE_MAX_CONNECTIONS": "0"}, "max_connections"),
        ({"PUENTE_DATABASE_MIN_CONNECTIONS": "50"}, "min_connections"),  # > max (20)
        ({"PUENTE_DATABASE_COMMAND_TIMEOUT_S": "0"}, "command_timeout_s"),
        ({"PUENTE_DATABASE_CONNECT_TIMEOUT_S": "-5"}, "connect_timeout_s"),
        ({"PUENTE_DATABASE_CONNECT_TIMEOUT_S": "inf"}, "connect_timeout_s"),
    ],
)
def test_pool_settings_are_checked_when_loaded(env: dict[str, str], name: str) -> None:
    from puente.settings import SettingsError, load

    with pytest.raises(SettingsError, match=f"(?i){name}"):  # ("inf": named by its variable)
        load(DatabaseSettings, "database", environ=env)


async def test_create_pool_refuses_bad_settings_without_a_traceback() -> None:
    with pytest.raises(DbError, match="max_connections"):
        await create_pool("postgresql://x@127.0.0.1:1/x", DatabaseSettings(max_connections=0))


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("notaurl", "ClientConfigurationError"),
        ("postgresql://bob:Sup3rS3cret@127.0.0.1:1/x", "ConnectionRefusedError"),
        ("postgresql://bob:Sup3rS3cret@127.0.0.1:99999/x", "OverflowError"),
        ("postgresql://bob:Sup3rS3cret@[::1/x", "ValueError"),
    ],
)
async def test_connection_failures_are_db_errors_without_the_password(url: str, kind: str) -> None:
    from puente.database import connect, database_url

    with pytest.raises(DbError, match=kind) as e:
        await connect(url)
    assert "Sup3rS3cret" not in str(e.value)
    with pytest.raises(DbError, match=kind):
        async with database_url(url):
            pass
    with pytest.raises(DbError, match=kind):
        await create_pool(url, DatabaseSettings(url=url, connect_timeout_s=2))


def test_connect_error_hides_the_password_and_says_what_a_timeout_is() -> None:
    url = "postgresql://bob:p%40ss@127.0.0.1/x"
    e = connect_error(ValueError("bad p@ss and p%40ss"), url)
    assert "p@ss" not in str(e)
    assert "p%40ss" not in str(e)
    assert str(connect_error(TimeoutError(), url)).endswith("TimeoutError: no answer in time")


async def test_wrong_password_and_missing_database_are_db_errors(database_url: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    from puente.database import connect

    parts = urlsplit(database_url)
    missing = urlunsplit(parts._replace(path="/no_such_database_here"))
    with pytest.raises(DbError, match="InvalidCatalogNameError"):
        await connect(missing)
    user = parts.username or "postgres"
    netloc = f"{user}:wrong-Pa55word@{parts.hostname}:{parts.port}"
    with pytest.raises(DbError) as e:
        await connect(urlunsplit(parts._replace(netloc=netloc)))
    assert "wrong-Pa55word" not in str(e.value)
