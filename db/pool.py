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
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        raise DbError(f"cannot connect to the database: {e.__class__.__name__}: {e}") from e
    assert pool is not None
    return pool
