"""A database fault on cue: a trigger that runs a PL/pgSQL statement for the rows it picks.

Tests of imports use it to stand in for the server's own failures in the middle of a load (a
full disk: ``RAISE``; a stall an administrator ends: ``PERFORM pg_sleep``), on exactly the row
they name, and take it away again whatever the test did.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg


@contextlib.asynccontextmanager
async def fault_on(
    pool: asyncpg.Pool,
    table: str,
    action: str,
    *,
    when: str = "true",
    events: str = "INSERT",
) -> AsyncIterator[None]:
    """While the block runs, ``action`` (one PL/pgSQL statement) runs before each ``events`` on
    ``table`` for a row where ``when`` (an expression over ``NEW``) holds."""
    name = f"test_fault_{uuid.uuid4().hex[:12]}"
    await pool.execute(
        f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF {when} THEN {action}; END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER {name} BEFORE {events} ON {table}
                FOR EACH ROW EXECUTE FUNCTION {name}();"""
    )
    try:
        yield
    finally:
        await pool.execute(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}()")


async def fetch_until(pool: asyncpg.Pool, sql: str, *args: object, within: float = 15.0) -> Any:
    """The first value of ``sql`` once it returns one (not None), polling; AssertionError
    after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (found := await pool.fetchval(sql, *args)) is not None:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"never true: {sql}")


async def sleeping_backend(pool: asyncpg.Pool, within: float = 15.0) -> int:
    """The pid of this database's backend held in ``pg_sleep`` (by a :func:`fault_on` stall),
    once there is one."""
    return await fetch_until(
        pool,
        "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
        " AND datname = current_database()",
        within=within,
    )
