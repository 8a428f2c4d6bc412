"""A fresh, migrated database for one benchmark run, on ``PUENTE_DATABASE_URL`` or the
embedded server in ``.puente/pg-bench``; dropped afterwards."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg

from db import LocalPostgres, migrate


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """The server to create benchmark databases on (started and stopped if embedded)."""
    url = os.environ.get("PUENTE_DATABASE_URL")
    if url:
        yield url
        return
    server = LocalPostgres(base_dir=Path(".puente") / "pg-bench")
    try:
        yield server.start().url("postgres")
    finally:
        if server.started_by_us:
            server.stop()


@contextlib.asynccontextmanager
async def fresh_database(url: str, name: str) -> AsyncIterator[str]:
    admin = await asyncpg.connect(url)
    db = f"puente_bench_{name}_{os.getpid()}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{db}"')
    await admin.execute(f'CREATE DATABASE "{db}"')
    try:
        bench_url = url.rsplit("/", 1)[0] + "/" + db
        conn = await asyncpg.connect(bench_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield bench_url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()
