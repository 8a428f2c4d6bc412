"""Agentless mode: answered people go straight to an IVR flow; no agents pace the lines."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import asyncpg

from tests.dialer._floor import floor, make_campaign, poll_until, running

HUMANS = {
    "seed": 11,
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.3},
    "talk_s": {"dist": "fixed", "value": 1.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
}


async def _agentless(pool: asyncpg.Pool, tmp_path: Path, leads: int, **settings: object) -> str:
    cid, code = await make_campaign(pool, tmp_path, mode="progressive", leads=leads)
    await pool.execute(
        "UPDATE campaigns SET mode = 'agentless', agentless_flow = 'reminder',"
        " settings = settings || $2::jsonb WHERE id = $1",
        cid,
        json.dumps(settings),
    )
    return code


def _dead_port() -> int:
    with socket.socket() as s:  # bound, never listening, closed: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_no_agents_needed_and_lines_bounded_by_max_lines(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    code = await _agentless(db_pool, tmp_path, leads=6, max_lines=2)
    async with floor(db_pool, model=HUMANS, agents=0) as f:
        runner = await f.runner_for(code, tick_s=0.1)
        most = 0

        async def all_final() -> bool:
            nonlocal most
            most = max(most, len(runner.calls))
            open_ = await db_pool.fetchval(
                "SELECT count(*) FROM leads l JOIN campaigns c ON c.id = l.campaign_id"
                " WHERE c.code = $1 AND l.state NOT IN ('ready', 'done', 'cancelled')",
                code,
            )
            done = await db_pool.fetchval(
                "SELECT count(*) FROM call_attempts a JOIN campaigns c ON c.id = a.campaign_id"
                " WHERE c.code = $1 AND a.state = 'final'",
                code,
            )
            return open_ == 0 and done == 6

        async with running(runner, f.clients[0]):
            await poll_until(all_final, 30)
    assert 1 <= most <= 2  # dialed without a single agent, never past its lines


async def test_a_campaign_with_no_lines_dials_nothing_and_says_why(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    code = await _agentless(db_pool, tmp_path, leads=2, max_lines=0)
    async with floor(db_pool, model=HUMANS, agents=0) as f:
        runner = await f.runner_for(code, tick_s=0.1)

        async def said() -> bool:
            return "no trunk capacity" in runner.status()

        async with running(runner, f.clients[0]):
            await poll_until(said)
            await asyncio.sleep(0.5)
    assert runner.stats.dials == 0
    n = await db_pool.fetchval(
        "SELECT count(*) FROM call_attempts a JOIN campaigns c ON c.id = a.campaign_id"
        " WHERE c.code = $1",
        code,
    )
    assert n == 0


async def test_an_answer_the_ivr_cannot_take_counts_as_abandoned(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # FastAGI down: AGI() fails at once (AGISTATUS=FAILURE) and the dialplan hangs up. The
    # live person heard nothing but silence: an abandoned call, which the abandonment rate
    # must count (it is 'hangup', a live answer that went fine, today).
    code = await _agentless(db_pool, tmp_path, leads=1)
    async with floor(db_pool, model=HUMANS, agents=0) as f:
        f.sim.core.globals["PUENTE_AGI"] = f"127.0.0.1:{_dead_port()}"
        runner = await f.runner_for(code, tick_s=0.1)

        async def final() -> bool:
            n = await db_pool.fetchval(
                "SELECT count(*) FROM call_attempts a JOIN campaigns c ON c.id = a.campaign_id"
                " WHERE c.code = $1 AND a.state = 'final'",
                code,
            )
            return n == 1

        async with running(runner, f.clients[0]):
            await poll_until(final)
    row = await db_pool.fetchrow(
        "SELECT a.disposition, a.abandoned, a.amd_status FROM call_attempts a"
        " JOIN campaigns c ON c.id = a.campaign_id WHERE c.code = $1",
        code,
    )
    assert row["amd_status"] != "MACHINE"  # a person answered (NOTSURE: the floor has no AMD)
    assert row["abandoned"], dict(row)


async def test_a_flow_that_takes_no_answer_holds_the_lines(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # FastAGI down: every answer is abandoned. The pacer went on opening every line it had,
    # each answer another abandoned person; after three in a row it now holds, and says why.
    code = await _agentless(db_pool, tmp_path, leads=30, max_lines=2)
    async with floor(db_pool, model=HUMANS, agents=0) as f:
        f.sim.core.globals["PUENTE_AGI"] = f"127.0.0.1:{_dead_port()}"
        runner = await f.runner_for(code, tick_s=0.1)

        async def held() -> bool:
            return runner.why.startswith("held: the IVR flow could not take")

        async with running(runner, f.clients[0]):
            await poll_until(held)
            dials = runner.stats.dials
            await asyncio.sleep(2.0)  # (ten ticks, within the hold)
            assert runner.stats.dials == dials
            assert runner.why.startswith("held:")
            assert runner.held() == "ivr_unavailable"  # /metrics: puente_dialing_held
    assert 3 <= dials <= 4  # three abandoned answers, and at most the line still ringing
    abandoned = await db_pool.fetchval(
        "SELECT count(*) FROM call_attempts a JOIN campaigns c ON c.id = a.campaign_id"
        " WHERE c.code = $1 AND a.abandoned",
        code,
    )
    assert abandoned >= 3
