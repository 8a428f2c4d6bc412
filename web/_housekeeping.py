"""Housekeeping of the web tables, run periodically by :class:`web.WebComponent`.

Sessions ended (expired or revoked) more than ``keep_days`` ago are deleted; the stored errors
of lead uploads older than that are dropped (the import's summary stays). Idempotent and safe
from several nodes at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

KEEP_DAYS = 30
SWEEP_EVERY_S = 3600.0


async def sweep(pool: asyncpg.Pool, now: datetime, keep_days: int = KEEP_DAYS) -> tuple[int, int]:
    """``(sessions deleted, import error reports dropped)``."""
    before = now - timedelta(days=keep_days)
    async with pool.acquire() as conn:
        sessions = await conn.execute(
            "DELETE FROM web_sessions WHERE expires_at < $1 OR revoked_at < $1", before
        )
        imports = await conn.execute(
            "UPDATE web_imports SET errors_csv = NULL"
            " WHERE created_at < $1 AND errors_csv IS NOT NULL",
            before,
        )
    return int(sessions.split()[-1]), int(imports.split()[-1])
