"""Several nodes, one pacer per campaign; another node takes over when the pacer dies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from db import DatabaseSettings, create_pool
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


async def test_a_lock_granted_to_a_cancelled_claim_does_not_stay_on_a_pooled_connection(
    database_url: str, tmp_path: Path
) -> None:
    # Cancelled (the tick's deadline) after the server granted the lock: the connection went
    # back to the pool holding it, and no node could pace the campaign until this one happened
    # to draw that connection again.
    # The service's pool: it keeps a connection's session state (db.create_pool's reset).
    db_pool = await create_pool(database_url, DatabaseSettings(url=database_url))
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code, tick_s=0.2)

    class Cut:
        """A connection whose next query runs, then its caller is cancelled."""

        def __init__(self, conn) -> None:  # type: ignore[no-untyped-def]
            self.conn = conn

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self.conn, name)

        async def fetchval(self, *args, **kw):  # type: ignore[no-untyped-def]
            await self.conn.fetchval(*args, **kw)
            raise asyncio.CancelledError

    class Granted:
        """The pool, whose next connection is :class:`Cut`."""

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(db_pool, name)

        async def acquire(self):  # type: ignore[no-untyped-def]
            return Cut(await db_pool.acquire())

        async def release(self, conn) -> None:  # type: ignore[no-untyped-def]
            await db_pool.release(conn.conn if isinstance(conn, Cut) else conn)

    runner.pool = Granted()  # type: ignore[assignment]
    try:
        await runner._lead()
    except asyncio.CancelledError:
        pass
    assert not runner.is_leader

    async def held() -> int:
        return await db_pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = x'70616365'::int::oid AND objid::bigint = $1",
            cid,
        )

    try:
        async with asyncio.timeout(5):  # (the server ends the session it was cut from at once)
            while await held():  # noqa: ASYNC110 - the database
                await asyncio.sleep(0.05)
    finally:
        await db_pool.close()
