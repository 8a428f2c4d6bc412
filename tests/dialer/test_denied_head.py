"""Leads at the top of the list that compliance denies do not hold the free agents back: the
pacing step claims past them to leads that may be called now, in the same step."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg

from tests.dialer._floor import floor, make_campaign, poll_until, running

MODEL = {
    "seed": 4,
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.2},
    "talk_s": {"dist": "fixed", "value": 2.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
}


async def test_free_agents_get_the_callable_leads_behind_denied_ones(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=14)
    # The twelve best leads belong to debtors who asked not to be called; two others may be.
    ceased = await db_pool.fetch(
        "UPDATE leads SET priority = 100 WHERE id IN (SELECT id FROM leads WHERE campaign_id = $1"
        " ORDER BY id LIMIT 12) RETURNING person_id",
        cid,
    )
    await db_pool.executemany(
        "INSERT INTO contact_blocks (kind, person_id, source) VALUES ('cease', $1, 'test')",
        [(r["person_id"],) for r in ceased],
    )
    attempts = "SELECT count(*) FROM call_attempts WHERE campaign_id = $1"
    async with floor(db_pool, model=MODEL, agents=2) as f:
        runner = await f.runner_for(code, tick_s=0.1)
        async with running(runner, f.clients[0]):
            started = time.monotonic()

            async def both_dialed() -> bool:
                return await db_pool.fetchval(attempts, cid) >= 2

            await poll_until(both_dialed, 20)
            waited = time.monotonic() - started
    # Before, each step claimed as many leads as agents were free, and a step whose leads
    # were all denied went quiet for 5 s: six such steps (30 s) before the first call. Now
    # the first step claims on past the twelve (the bound is loose for a busy machine).
    assert waited < 8, waited
    rows = await db_pool.fetch(
        "SELECT state, last_outcome, count(*) AS n FROM leads WHERE campaign_id = $1 GROUP BY 1, 2",
        cid,
    )
    assert {(r["state"], r["last_outcome"], r["n"]) for r in rows} >= {
        ("cancelled", "CEASE", 12)
    }, rows
    assert await db_pool.fetchval(attempts, cid) == 2  # the two callable: nobody else
