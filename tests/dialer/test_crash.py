"""``kill -9`` of the whole service at random points of a running campaign, then restarts.

The service (``python -m puente run``) runs as a user runs it, against the simulated Asterisk
in this process, which outlives every kill, so calls go on while nobody listens. After the
last restart the campaign is paused and drains; then, from the database and from the
simulator's own record of every Originate it received:

- every attempt has exactly one final disposition;
- no attempt was dialed twice, and nothing was dialed without its attempt row;
- no lead is lost or left claimed;
- the ledger is exact: one reservation per attempt, none without its attempt, and each
  result's outcome where the disposition has one.
"""

from __future__ import annotations

import asyncio
import collections
import random
import signal
from pathlib import Path

import asyncpg

from tests.dialer._floor import make_campaign
from tests.dialer._service import (
    LEDGER,
    SIM_WRAPUP_S,
    service_env,
    settled,
    start_pbx,
    start_service,
    until,
    write_test_pack,
)

MODEL = {
    "seed": 11,
    "outcomes": {"human": 0.35, "busy": 0.2, "no_answer": 0.2, "unallocated": 0.1,
                 "machine": 0.15},
    "ring_s": {"dist": "uniform", "low": 0.3, "high": 1.5},
    "fail_after_s": {"dist": "fixed", "value": 0.3},
    "talk_s": {"dist": "uniform", "low": 0.5, "high": 3.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
    "machine_greeting_s": {"dist": "fixed", "value": 0.5},
}  # fmt: skip


async def test_kill_9_at_random_points_then_restart(database_url: str, tmp_path: Path) -> None:
    write_test_pack(tmp_path / "packs")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    cid, code = await make_campaign(
        pool, tmp_path, mode="predictive", leads=60, queue_wrapup_s=SIM_WRAPUP_S
    )
    await pool.execute("UPDATE campaigns SET compliance_packs = '{anytime}' WHERE id = $1", cid)
    pbx = await start_pbx(MODEL, agents=4)
    env = service_env(database_url, pbx, node="n1", pbx_name="sim", packs=tmp_path / "packs")
    log = tmp_path / "service.log"

    async def dialed_more(than: int) -> bool:
        n = await pool.fetchval("SELECT count(*) FROM call_attempts WHERE campaign_id = $1", cid)
        return n >= than

    async def attempts() -> int:
        return await pool.fetchval("SELECT count(*) FROM call_attempts WHERE campaign_id = $1", cid)

    rng = random.Random()
    kills = 0
    proc = None
    try:
        for _ in range(3):
            proc = await start_service(env, log)
            before = await attempts()
            await until(lambda b=before: dialed_more(b + 2), 30, "the service to dial")
            await asyncio.sleep(rng.uniform(0.0, 1.5))  # somewhere in the middle of things
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            kills += 1
        proc = await start_service(env, log)
        before = await attempts()
        await until(lambda b=before: dialed_more(b + 2), 30, "the restarted service to dial")
        await asyncio.sleep(2)
        await pool.execute("UPDATE campaigns SET state = 'paused' WHERE id = $1", cid)

        await until(lambda: settled(pool, cid, [pbx]), 60, "every attempt to end")
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        assert proc.returncode == 0, log.read_text()[-3000:]
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await pbx.sim.stop()

    rows = await pool.fetch(
        "SELECT id::text AS id, state, disposition FROM call_attempts WHERE campaign_id = $1", cid
    )
    ids = {r["id"] for r in rows}
    assert kills == 3
    assert len(rows) >= 8
    # Every attempt has exactly one final disposition.
    assert all(r["state"] == "final" and r["disposition"] for r in rows), rows
    # Nothing dialed twice, nothing dialed without its attempt row.
    counts = collections.Counter(pbx.originated)
    assert counts
    assert max(counts.values()) == 1, counts.most_common(3)
    assert set(counts) <= ids  # (an attempt whose Originate was never sent ends as lost)
    # No lead lost or left claimed.
    leads = await pool.fetch("SELECT state FROM leads WHERE campaign_id = $1", cid)
    assert len(leads) == 60
    assert {r["state"] for r in leads} <= {"ready", "done", "cancelled"}
    # The ledger: one reservation per attempt, none without its attempt.
    reserved = await pool.fetch(
        "SELECT attempt_id::text AS id, count(*) AS n FROM compliance_attempts "
        "WHERE campaign = $1 GROUP BY 1",
        code,
    )
    assert {r["id"] for r in reserved} == ids
    assert all(r["n"] == 1 for r in reserved)
    outcomes = {
        r["id"]: r["outcomes"]
        for r in await pool.fetch(
            "SELECT attempt_id::text AS id, array_agg(outcome) AS outcomes "
            "FROM compliance_outcomes WHERE attempt_id = ANY($1::uuid[]) GROUP BY 1",
            list(ids),
        )
    }
    for r in rows:
        want = LEDGER.get(r["disposition"])
        assert outcomes.get(r["id"]) == ([want] if want else None), r["disposition"]
    await pool.close()


async def test_a_node_restarted_after_its_campaign_was_paused_settles_what_it_left(
    database_url: str, tmp_path: Path
) -> None:
    # The node died with a call on its way; the campaign was paused before it came back.
    # Its campaign is not running, but the node still settles that attempt: nothing on the
    # PBX, so the call ended unheard (lost) and its lead is ready again.
    packs = tmp_path / "packs"
    write_test_pack(packs)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    cid, _ = await make_campaign(pool, tmp_path, mode="progressive", leads=2)
    lead = await pool.fetchrow(
        """UPDATE leads SET state = 'in_call', attempts = attempts + 1
           WHERE id = (SELECT min(id) FROM leads WHERE campaign_id = $1)
           RETURNING id, person_id, debt_id""",
        cid,
    )
    attempt = await pool.fetchval(
        """INSERT INTO call_attempts (id, lead_id, campaign_id, person_id, debt_id, phone_id,
                                      node, pbx, state)
           SELECT gen_random_uuid(), $1, $2, $3, $4, n.id, 'n0', 'sim0', 'originating'
           FROM phone_numbers n WHERE n.person_id = $3 LIMIT 1
           RETURNING id::text""",
        lead["id"], cid, lead["person_id"], lead["debt_id"],
    )  # fmt: skip
    await pool.execute(
        "UPDATE campaigns SET state = 'paused', compliance_packs = '{anytime}' WHERE id = $1", cid
    )
    pbx = await start_pbx(MODEL, agents=1)
    log = tmp_path / "service.log"
    proc = await start_service(
        service_env(database_url, pbx, node="n0", pbx_name="sim0", packs=packs), log
    )
    try:
        await until(lambda: settled(pool, cid, [pbx]), 30, "the attempt left behind to end")
        row = await pool.fetchrow(
            "SELECT state, disposition FROM call_attempts WHERE id = $1::uuid", attempt
        )
        assert (row["state"], row["disposition"]) == ("final", "lost")
        assert await pool.fetchval("SELECT state FROM leads WHERE id = $1", lead["id"]) == "ready"
        assert not pbx.originated  # a paused campaign dials nothing
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        await pbx.sim.stop()
        await pool.close()
    assert proc.returncode == 0, log.read_text()[-3000:]
