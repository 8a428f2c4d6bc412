"""The asyncpg connection pool and the database settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from db._exceptions import DbError


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the database is and how to use it.

    ``url`` empty means: run the embedded PostgreSQL (:mod:`db.local`).
    """

    url: str = field(default="", repr=False)
    min_connections: int = 2
    max_connections: int = 20
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 10.0
    embedded_dir: str = ""

    @property
    def embedded(self) -> bool:
        return not self.url


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: nothing, unless it is dirty.

    asyncpg's default runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on
    every release: one more round trip for each short transaction (a compliance decision is
    four). Puente keeps no session state on pooled connections: transaction-scoped locks only,
    no LISTEN, no SET outside a transaction; what needs session state (the pacing leader's
    lock, notifications) uses a dedicated connection. A connection released inside a
    transaction (a cancelled caller) still gets the full reset.
    """
    if conn.is_in_transaction():
        await conn.reset()


async def create_pool(url: str, settings: DatabaseSettings | None = None) -> asyncpg.Pool:
    """A pool on ``url``; connection failures are translated into :class:`DbError`."""
    s = settings or DatabaseSettings(url=url)
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=s.min_connections,
            max_size=s.max_connections,
            timeout=s.connect_timeout_s,
            command_timeout=s.command_timeout_s,
            reset=_reset,
            # No JIT: Puente's statements are short, or periodic scans (the minute's rescore
            # of every ready lead, the wallboard) that PostgreSQL would compile anew each time:
            # 0.6 s of compilation for a 0.9 s rescore at 100,000 leads.
            server_settings={"jit": "off"},
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        raise DbError(f"cannot connect to the database: {e.__class__.__name__}: {e}") from e
    assert pool is not None
    return pool
