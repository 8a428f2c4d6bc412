"""The database goes away while calls are live: no new dials, live calls go on, and every
result is written when it comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.dialer._floor import floor, make_campaign
from tests.dialer._service import LEDGER
from tests.support.faultproxy import FaultProxy

MODEL = {
    "seed": 3,
    "outcomes": {"human": 0.5, "busy": 0.25, "no_answer": 0.25},
    "ring_s": {"dist": "fixed", "value": 0.4},
    "fail_after_s": {"dist": "fixed", "value": 0.3},
    "talk_s": {"dist": "fixed", "value": 2.5},
    "patience_s": {"dist": "fixed", "value": 30.0},
}


async def until(predicate, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - counters of the runner and the simulator
            await asyncio.sleep(0.05)


async def test_database_outage_during_live_calls(
    db_pool, database_url: str, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=60)
    parts = urlsplit(database_url)
    async with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
        url = urlunsplit(parts._replace(netloc=netloc))
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4, timeout=3)
        try:
            async with floor(pool, model=MODEL, agents=3) as f:
                originated: list[str] = []
                real = f.sim.core.originate

                def recording(conn, fields, variables, now):
                    originated.append(fields.get("channelid", ""))
                    return real(conn, fields, variables, now)

                f.sim.core.originate = recording  # type: ignore[method-assign]
                runner = await f.runner_for(code, tick_s=0.2, warmup_calls=1000)
                async with asyncio.TaskGroup() as tg:
                    await runner.start(tg)
                    f.clients[0].start()
                    await until(lambda: runner.stats.connected >= 1 and runner.stats.dials >= 4, 15)

                    # The database goes: cut every connection, refuse new ones.
                    proxy.refusing = True
                    await proxy.cut_all()
                    dials_at_cut = runner.stats.dials
                    live_at_cut = len(runner.calls)
                    assert live_at_cut > 0
                    await asyncio.sleep(4)  # calls end meanwhile (talk 2.5 s)
                    assert runner.stats.dials == dials_at_cut  # no new dials
                    assert len(originated) <= dials_at_cut
                    assert runner.why == "database unavailable"
                    # Live calls went on to their end; their results wait in memory.
                    assert runner._finals.qsize() > 0

                    proxy.refusing = False  # it comes back
                    await until(lambda: runner.stats.dials > dials_at_cut, 20)  # dialing again
                    await pool.execute("UPDATE campaigns SET state = 'paused' WHERE id = $1", cid)
                    await until(lambda: not runner.calls, 30)
                    await runner.stop()
        finally:
            await pool.close()

    rows = await db_pool.fetch(
        "SELECT id::text AS id, state, disposition FROM call_attempts WHERE campaign_id = $1",
        cid,
    )
    # Every dial has its row and was sent once. (A commit whose answer the cut lost leaves rows
    # the runner does not know of: they end as lost, never dialed, and keep counting.)
    assert runner.stats.dials == len(originated)
    assert {r["id"] for r in rows} >= set(originated)
    assert all(r["state"] == "final" for r in rows)  # every result written, none lost
    # (A result whose commit answer the cut lost is retried, finds itself written, and is not
    # counted again: the database, not the counter, is the record.)
    assert runner.stats.finals <= len(rows)
    for r in rows:
        want = LEDGER.get(r["disposition"])
        got = await db_pool.fetchval(
            "SELECT outcome FROM compliance_outcomes WHERE attempt_id = $1::uuid", r["id"]
        )
        assert got == want, (r["disposition"], got)
    states = await db_pool.fetch("SELECT DISTINCT state FROM leads WHERE campaign_id = $1", cid)
    assert {s["state"] for s in states} <= {"ready", "done", "cancelled"}
