"""The embedded server with a relative directory, and the pool's release policy."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from db import DatabaseSettings, LocalPostgres, create_pool


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
