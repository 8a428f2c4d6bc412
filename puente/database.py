"""Resolve the database the process uses: ``PUENTE_DATABASE_URL``, or the embedded server.

Used by the composition root and by CLI commands that need the database. Migrations are
applied on the way in (the runner is idempotent and safe with several nodes).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from db import DatabaseSettings, DbError, LocalPostgres, create_pool, history_at_risk, migrate
from db.pool import CONNECT_ERRORS, connect_error

log = logging.getLogger(__name__)


async def connect(url: str, timeout_s: float = 10) -> asyncpg.Connection:
    """One connection to ``url``; any failure (a malformed URL, a refused or unresolvable
    host, a bad password, a missing database, no answer) is a :class:`DbError` saying so,
    without the URL's password."""
    try:
        return await asyncpg.connect(url, timeout=timeout_s)
    except CONNECT_ERRORS as e:
        raise connect_error(e, url) from e


async def _warn_if_history_at_risk(conn: asyncpg.Connection) -> None:
    """The service reaches its production server as a role that could undo the ledger's
    history: say so once at start (the service runs; the deployment decides)."""
    try:
        risk = await history_at_risk(conn)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
        log.warning("could not check the database role's rights: %s", e.__class__.__name__)
        return
    if risk:
        log.warning(
            "the service connects to the database as a role that could disable the triggers "
            "that keep the ledger's history (%s): give it a role of its own (puente db grant "
            "ROLE, run as the schema's owner; README: The service's role)",
            risk,
        )


@contextlib.asynccontextmanager
async def database_url(
    url: str | None = None,
    *,
    embedded_dir: Path | None = None,
    apply_migrations: bool = True,
    durable: bool = False,
) -> AsyncIterator[str]:
    """Yield a URL for a migrated database.

    ``url`` (else ``PUENTE_DATABASE_URL``) names an existing server. Without one, the embedded
    PostgreSQL is started (and stopped again on exit if this call started it); ``durable``
    (the service, as opposed to the demo, the tests and the commands) starts it with
    PostgreSQL's own durability, and warns when the server it reuses runs without it; on a
    server of its own, it warns when its role could undo the ledger's history.
    """
    url = url or os.environ.get("PUENTE_DATABASE_URL") or None
    server: LocalPostgres | None = None
    if url is None:
        server = LocalPostgres(base_dir=embedded_dir)
        info = server.start(durable=durable)
        url = info.url("postgres")
        if durable:
            log.warning(
                "no PUENTE_DATABASE_URL: the service runs on the embedded PostgreSQL in %s; "
                "for production, give it a server of its own",
                info.base_dir,
            )
    try:
        if durable and server is not None:
            conn = await connect(url)
            try:
                if await conn.fetchval("SHOW fsync") != "on":
                    log.warning(
                        "the embedded PostgreSQL reused was started for the demo or the tests, "
                        "with fsync off: a machine crash can lose call results and ledger "
                        "entries; stop it (pg_ctl stop -D %s) and start the service again",
                        server.data_dir,
                    )
            finally:
                await conn.close()
        if apply_migrations:
            conn = await connect(url)
            try:
                applied = await migrate(conn)
                if durable and server is None:  # the service on a server of its own
                    await _warn_if_history_at_risk(conn)
            except DbError:
                raise
            except CONNECT_ERRORS as e:  # (a role without the rights, the server gone...)
                raise connect_error(e, url, "migrate") from e
            finally:
                await conn.close()
            for m in applied:
                log.info("applied migration %04d_%s", m.version, m.name)
        yield url
    finally:
        if server is not None and server.started_by_us:
            server.stop()


@contextlib.asynccontextmanager
async def database_pool() -> AsyncIterator[asyncpg.Pool]:
    """A small pool on :func:`database_url`'s database, for a command; closed on the way out."""
    async with database_url() as url:
        pool = await create_pool(url, DatabaseSettings(url=url, min_connections=1))
        try:
            yield pool
        finally:
            await pool.close()
