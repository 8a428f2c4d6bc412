"""Preview mode: an agent asks for a lead, sees it, and starts the call or passes on it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from dialer.preview import preview_queue
from tests.dialer._floor import floor, make_campaign, poll_until, preview_request

MODEL = {
    "seed": 3,
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.3},
    "talk_s": {"dist": "fixed", "value": 1.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
}


async def test_offer_then_call_reaches_that_agent_and_skip_releases(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=5)
    async with floor(db_pool, model=MODEL, agents=2) as f:
        # The agent who asks waits in their own preview queue; the campaign queue's agents
        # are free too, and must not get the call.
        f.sim.core.add_member(preview_queue("p1"), "Local/p1@agents", "P1", 0.0)
        runner = await f.runner_for(code, tick_s=0.1)
        connects: list[str] = []
        async with asyncio.TaskGroup() as tg:
            await runner.start(tg)
            f.clients[0].subscribe(
                lambda m: connects.append(m.get("Interface") or ""), "AgentConnect"
            )
            f.clients[0].start()
            await asyncio.sleep(1.0)
            assert (
                await db_pool.fetchval(  # preview never dials by itself
                    "SELECT count(*) FROM call_attempts WHERE campaign_id = $1", cid
                )
                == 0
            )

            first = await preview_request(db_pool, cid, "p1")

            async def offered() -> bool:
                row = await db_pool.fetchrow(
                    "SELECT state FROM preview_requests WHERE id = $1", first
                )
                return row["state"] == "offered"

            await poll_until(offered)
            attempt = await db_pool.fetchval(
                "SELECT attempt_id FROM preview_requests WHERE id = $1", first
            )
            state = await db_pool.fetchval("SELECT state FROM call_attempts WHERE id = $1", attempt)
            assert state == "originating"  # the intent is written, nothing dialed yet
            await db_pool.execute(
                "UPDATE preview_requests SET state = 'accepted' WHERE id = $1", first
            )

            async def final(a: object) -> bool:
                return (
                    await db_pool.fetchval("SELECT state FROM call_attempts WHERE id = $1", a)
                    == "final"
                )

            await poll_until(lambda: final(attempt), 15)
            assert connects == ["Local/p1@agents"]
            assert (
                await db_pool.fetchval(
                    "SELECT disposition FROM call_attempts WHERE id = $1", attempt
                )
                == "agent"
            )
            # The runner made the call the agent's when it connected (their outcome, reports).
            owner = await db_pool.fetchval(
                "SELECT a.code FROM call_attempts c JOIN agents a ON a.id = c.agent_id"
                " WHERE c.id = $1",
                attempt,
            )
            assert owner == "p1"

            # The next one is skipped: ended as not placed, the lead waits its retry.
            await db_pool.execute(
                "UPDATE preview_requests SET state = 'closed' WHERE id = $1", first
            )
            second = await preview_request(db_pool, cid, "p1")
            await poll_until(lambda: _state_is(db_pool, second, "offered"))
            skipped = await db_pool.fetchval(
                "SELECT attempt_id FROM preview_requests WHERE id = $1", second
            )
            await db_pool.execute(
                "UPDATE preview_requests SET state = 'skipped' WHERE id = $1", second
            )
            await poll_until(lambda: final(skipped))
            await runner.stop()
    row = await db_pool.fetchrow(
        "SELECT a.disposition, l.state, o.outcome FROM call_attempts a"
        " JOIN leads l ON l.id = a.lead_id"
        " LEFT JOIN compliance_outcomes o ON o.attempt_id = a.id WHERE a.id = $1",
        skipped,
    )
    assert (row["disposition"], row["state"], row["outcome"]) == ("skipped", "ready", "not_placed")
    assert connects == ["Local/p1@agents"]


async def _state_is(pool: asyncpg.Pool, request: int, state: str) -> bool:
    return await pool.fetchval("SELECT state FROM preview_requests WHERE id = $1", request) == state


async def test_pausing_the_campaign_closes_its_requests_and_returns_the_offer(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # Left open, the request kept its agent from asking in any other campaign (one open
    # request per agent), and the lead on offer stayed claimed.
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=5)
    async with floor(db_pool, model=MODEL, agents=1) as f:
        runner = await f.runner_for(code, tick_s=0.1, refresh_s=0.1)
        async with asyncio.TaskGroup() as tg:
            await runner.start(tg)
            f.clients[0].start()
            request = await preview_request(db_pool, cid, "p2")
            await poll_until(lambda: _state_is(db_pool, request, "offered"))
            offered = await db_pool.fetchval(
                "SELECT attempt_id FROM preview_requests WHERE id = $1", request
            )
            await db_pool.execute("UPDATE campaigns SET state = 'paused' WHERE id = $1", cid)
            await poll_until(lambda: _state_is(db_pool, request, "closed"))

            async def ended() -> bool:
                state = await db_pool.fetchval(
                    "SELECT state FROM call_attempts WHERE id = $1", offered
                )
                return state == "final"

            await poll_until(ended)
            await runner.stop()
    note = await db_pool.fetchval("SELECT note FROM preview_requests WHERE id = $1", request)
    assert note == "campaign paused"
    row = await db_pool.fetchrow(
        "SELECT a.disposition, o.outcome FROM call_attempts a"
        " LEFT JOIN compliance_outcomes o ON o.attempt_id = a.id WHERE a.id = $1",
        offered,
    )
    assert (row["disposition"], row["outcome"]) == ("skipped", "not_placed")
