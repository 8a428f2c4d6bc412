"""An agent's promise and an IVR caller's on one debt at the same moment: one active promise.

Both writers take the debt's row lock (``FOR UPDATE``) in the transaction that checks for an
active promise and inserts one: the agents' API in its debt read, the IVR in
:func:`ivr._promises.lock_debt`. Here a third transaction holds that lock while both writers
arrive and queue behind it, in a known order; then it lets them go together. The second to get
the lock must see the first's promise: a 409 for the API, ``exists`` for the IVR. A writer that
checked without the lock would have read "no promise" before the first committed, and inserted
a second one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from ivr._promises import insert_promise, lock_debt
from tests.web._api_support import Account, account, debtor, served

NOW = datetime(2026, 11, 3, 17, 0, tzinfo=UTC)
DUE = (NOW.date() + timedelta(days=7)).isoformat()


async def _ivr_promise(pool: asyncpg.Pool, debt_id: int) -> str:
    """What the IVR's ``record_promise`` does on the database, with a session of its own."""
    session_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO ivr_sessions (id, flow, language, entry, node)"
        " VALUES ($1, 'collections', 'es', 'inbound', 'race')",
        session_id,
    )
    async with pool.acquire() as conn, conn.transaction():
        now = await lock_debt(conn, debt_id)
        if now.active_promise_code is not None:
            return "exists"
        await insert_promise(
            conn,
            debt_id=debt_id,
            attempt_id=None,
            session_id=session_id,
            kind="custom",
            instalments=[{"due": DUE, "amount_cents": 20_000}],
            total_cents=20_000,
        )
    return "ok"


async def _api_promise(client: TestClient, who: Account, debt_id: int) -> int:
    body = {"debt_id": debt_id, "amount_cents": 30_000, "due": DUE}
    r = await client.post("/api/v1/promises", json=body, headers=who.auth)
    return r.status


async def _waiting_on_locks(pool: asyncpg.Pool, n: int) -> None:
    """Until ``n`` backends of this database wait on a lock (10 s at most)."""
    async with asyncio.timeout(10):
        while True:  # (PostgreSQL tells no one: asked again until it is so)
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting >= n:
                return
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("first", ["ivr", "api"])
async def test_an_agent_and_an_ivr_caller_at_once_make_one_active_promise(
    db_pool: asyncpg.Pool, first: str
) -> None:
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool, balance_cents=150_000)
    async with served(db_pool, clock=lambda: NOW) as client:
        writers: dict[str, Awaitable] = {
            "ivr": _ivr_promise(db_pool, d.debt_id),
            "api": _api_promise(client, sup, d.debt_id),
        }
        second = "api" if first == "ivr" else "ivr"
        async with db_pool.acquire() as holder:
            tx = holder.transaction()
            await tx.start()
            try:
                await holder.execute("SELECT 1 FROM debts WHERE id = $1 FOR UPDATE", d.debt_id)
                tasks = {}
                for n, name in enumerate((first, second), 1):  # queued in this order
                    tasks[name] = asyncio.ensure_future(writers[name])
                    await _waiting_on_locks(db_pool, n)
            finally:
                await tx.rollback()  # both go
            results = {name: await task for name, task in tasks.items()}

    assert results == (
        {"ivr": "ok", "api": 409} if first == "ivr" else {"ivr": "exists", "api": 201}
    )
    promises = await db_pool.fetch(
        "SELECT source, status FROM promises WHERE debt_id = $1", d.debt_id
    )
    assert [(p["source"], p["status"]) for p in promises] == [
        ("ivr" if first == "ivr" else "api", "active")
    ]
    assert await db_pool.fetchval("SELECT status FROM debts WHERE id = $1", d.debt_id) == (
        "promised"
    )


async def test_no_promise_while_a_card_payment_on_the_debt_is_unknown(
    db_pool: asyncpg.Pool,
) -> None:
    """A card payment whose answer never came (pending) may have paid the debt, or set up a
    plan with a promise of its own: an agent's promise then made two active promises, one
    over the balance. Refused until the payment is settled; allowed once it is."""
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool, balance_cents=150_000)
    await db_pool.execute(
        "INSERT INTO payments (debt_id, idempotency_key, amount_cents, currency, status,"
        " gateway) VALUES ($1, $2, 50000, 'MXN', 'pending', 'sandbox')",
        d.debt_id,
        f"key-{uuid.uuid4()}",
    )
    async with served(db_pool, clock=lambda: NOW) as client:
        body = {"debt_id": d.debt_id, "amount_cents": 30_000, "due": DUE}
        r = await client.post("/api/v1/promises", json=body, headers=sup.auth)
        assert r.status == 409
        assert "outcome is not known" in (await r.json())["error"]
        await db_pool.execute(
            "UPDATE payments SET status = 'declined' WHERE debt_id = $1", d.debt_id
        )
        r = await client.post("/api/v1/promises", json=body, headers=sup.auth)
        assert r.status == 201
