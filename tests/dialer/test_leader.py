"""Several nodes, one pacer per campaign; another node takes over when the pacer dies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.dialer._floor import floor, make_campaign

MODEL = {
    "outcomes": {"busy": 0.5, "no_answer": 0.5},
    "fail_after_s": {"dist": "fixed", "value": 0.2},
}


async def until(predicate, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - counters of the runners
            await asyncio.sleep(0.05)


async def test_one_pacer_per_campaign_and_takeover(db_pool, tmp_path: Path) -> None:
    _, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=200)
    async with floor(db_pool, model=MODEL, agents=2) as f:
        a = await f.runner_for(code, node="a", tick_s=0.2, warmup_calls=0)
        b = await f.runner_for(code, node="b", tick_s=0.2, warmup_calls=0)
        async with asyncio.TaskGroup() as tg:
            for r, client in zip((a, b), f.clients, strict=True):
                await r.start(tg)
                client.start()
            await until(lambda: a.stats.dials + b.stats.dials >= 4, 10)
            leader, standby = (a, b) if a.is_leader else (b, a)
            assert leader.is_leader
            assert not standby.is_leader
            assert standby.stats.dials == 0
            await leader.abort()  # the pacer's node dies: its lock's session ends with it
            await until(lambda: standby.is_leader, 10)
            before = standby.stats.dials
            await until(lambda: standby.stats.dials > before, 10)
            await standby.stop()
