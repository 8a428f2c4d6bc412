"""Promises that fell due unpaid become ``broken``; their debts go back to the dialer.

A promise is kept when the approved payments on its debt since it was made add up to its
total; it is broken when its last instalment is more than ``grace_days`` past and it is not
kept. Breaking one (one transaction): the promise is marked, its debt returns from
``promised`` to ``open``, and the debt's leads that were waiting or done come back ``ready``
now; the campaign's priority counts broken promises (``dialer.campaigns``), so they rise.
Run by the pacer's periodic step; idempotent, safe from several nodes at once.
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

_BREAK = """
WITH due AS (
    SELECT p.id, p.debt_id FROM promises p
    WHERE p.status = 'active' AND p.last_due < $1
      AND coalesce((SELECT sum(pay.amount_cents) FROM payments pay
                    WHERE pay.debt_id = p.debt_id AND pay.status = 'approved'
                      AND pay.created_at >= p.created_at), 0) < p.total_cents
    FOR UPDATE OF p SKIP LOCKED
), broken AS (
    UPDATE promises p SET status = 'broken', broken_at = now()
    FROM due WHERE p.id = due.id RETURNING p.debt_id
), reopened AS (
    UPDATE debts d SET status = 'open'
    WHERE d.id IN (SELECT debt_id FROM broken) AND d.status = 'promised'
    RETURNING d.id
)
UPDATE leads l SET state = 'ready', next_try_at = now()
WHERE l.debt_id IN (SELECT debt_id FROM broken) AND l.state IN ('waiting', 'done')
RETURNING (SELECT count(*) FROM broken)
"""
_KEPT = """
UPDATE promises p SET status = 'kept'
WHERE p.status = 'active'
  AND (SELECT coalesce(sum(pay.amount_cents), 0) FROM payments pay
       WHERE pay.debt_id = p.debt_id AND pay.status = 'approved'
         AND pay.created_at >= p.created_at) >= p.total_cents
"""


async def settle_promises(conn: asyncpg.Connection, today: date, grace_days: int = 3) -> int:
    """Mark kept promises kept and overdue ones broken; returns how many broke."""
    async with conn.transaction():
        await conn.execute(_KEPT)
        before = await conn.fetchval("SELECT count(*) FROM promises WHERE status = 'broken'")
        await conn.execute(_BREAK, today - timedelta(days=grace_days))
        after = await conn.fetchval("SELECT count(*) FROM promises WHERE status = 'broken'")
    return int(after - before)
