"""Overdue unpaid promises break and send their debt back to the dialer; paid ones are kept."""

from __future__ import annotations

import json
from datetime import date, timedelta

import asyncpg

from dialer.promises import settle_promises
from tests.ivr._seed import debtor

TODAY = date(2026, 11, 26)


async def _promise(conn: asyncpg.Connection, debt_id: int, due: date, code: str) -> int:
    plan = [{"due": due.isoformat(), "amount_cents": 50000}]
    return await conn.fetchval(
        "INSERT INTO promises (debt_id, source, plan, total_cents, confirmation_code, kind,"
        " first_due, last_due) VALUES ($1, 'ivr', $2::jsonb, 50000, $3, 'custom', $4, $4)"
        " RETURNING id",
        debt_id,
        json.dumps(plan),
        code,
        due,
    )


async def test_overdue_breaks_paid_is_kept_recent_waits(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        late, paid, recent = [await debtor(conn) for _ in range(3)]
        campaign = await conn.fetchval(
            "INSERT INTO campaigns (code, name) VALUES ('promises', 'P') RETURNING id"
        )
        lead = await conn.fetchval(
            "INSERT INTO leads (campaign_id, person_id, debt_id, state, next_try_at)"
            " VALUES ($1, $2, $3, 'done', '2030-01-01') RETURNING id",
            campaign,
            late.person_id,
            late.debt_id,
        )
        await conn.execute("UPDATE debts SET status = 'promised'")
        p_late = await _promise(conn, late.debt_id, TODAY - timedelta(days=5), "10000001")
        p_paid = await _promise(conn, paid.debt_id, TODAY - timedelta(days=5), "10000002")
        p_recent = await _promise(conn, recent.debt_id, TODAY - timedelta(days=1), "10000003")
        await conn.execute(
            "INSERT INTO payments (debt_id, idempotency_key, amount_cents, currency, status,"
            " gateway) VALUES ($1, 'k1', 50000, 'MXN', 'approved', 'sandbox')",
            paid.debt_id,
        )
        assert await settle_promises(conn, TODAY) == 1
        assert await settle_promises(conn, TODAY) == 0  # idempotent
        status = dict(await conn.fetch("SELECT id, status FROM promises"))
        assert status == {p_late: "broken", p_paid: "kept", p_recent: "active"}
        assert await conn.fetchval("SELECT status FROM debts WHERE id = $1", late.debt_id) == "open"
        row = await conn.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", lead)
        assert row["state"] == "ready"
        assert row["next_try_at"].year < 2030
