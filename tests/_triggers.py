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


async def sleeping_backend(pool: asyncpg.Pool, within_s: float = 15.0) -> int:
    """The pid of this database's backend held in ``pg_sleep`` (by a :func:`fault_on` stall),
    once there is one."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        pid = await pool.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
            " AND datname = current_database()"
        )
        if pid is not None:
            return pid
        await asyncio.sleep(0.02)
    raise AssertionError("no backend reached the stall")
