"""Defects a chaos soak found (kill -9, AMI and database faults, two nodes), reduced: a
callback must outlive an attempt that never reached the debtor, and an attempt whose lead the
retry schedule ends; a call answered while the AMI link was down is still an answered call."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dialer.runner as runner_module
from compliance import ComplianceGate
from dialer.callbacks import cancel_callback, pending_callbacks, schedule_callback
from dialer.campaigns import Campaign
from dialer.presence import Presence
from dialer.results import write_result
from dialer.selection import claim_and_gate
from tests.dialer import test_selection
from tests.dialer._floor import answered_while_stalled, floor, make_campaign, running
from tests.dialer.test_selection import NOON

# Ten leads in Mexico City, priorities 0, 1, 2, 0, 1, 2, ... (one number each), at NOON.
campaign = test_selection.campaign


async def _claim(db_pool, campaign, now: datetime = NOON):
    cid, code = campaign
    (dial,), _ = await claim_and_gate(
        db_pool, ComplianceGate(db_pool), campaign_id=cid, campaign_code=code, packs=["mx"],
        want=1, node="n1", pbx="sim", now=now,
    )  # fmt: skip
    return dial


async def _schedule(db_pool, lead_id: int, due_at: datetime) -> int:
    lead = await db_pool.fetchrow("SELECT person_id, debt_id FROM leads WHERE id = $1", lead_id)
    async with db_pool.acquire() as conn, conn.transaction():
        return await schedule_callback(
            conn, debt_id=lead["debt_id"], person_id=lead["person_id"], phone_id=None,
            due_at=due_at, source="ivr",
        )  # fmt: skip


async def test_a_callback_taken_by_an_attempt_never_dialed_is_pending_again(
    db_pool, campaign
) -> None:
    # kill -9 right after the claim committed: the attempt is written (the callback taken with
    # it) and its Originate never left; the restarted node ends it as lost. Or Asterisk refused
    # the Originate: failed. Nobody was called back either way: the promise still stands.
    _, code = campaign
    c = await Campaign.load(db_pool, code)
    gate = ComplianceGate(db_pool)
    leads = await db_pool.fetch(
        "SELECT id FROM leads WHERE campaign_id = $1 ORDER BY priority, id LIMIT 2", campaign[0]
    )
    for disposition, lead in zip(("lost", "failed"), (r["id"] for r in leads), strict=True):
        due = NOON - timedelta(minutes=1)
        cb = await _schedule(db_pool, lead, due)
        dial = await _claim(db_pool, campaign)
        assert dial.lead_id == lead  # the callback's lead, first
        taken = "SELECT attempt_id::text FROM callbacks WHERE id = $1"
        assert await db_pool.fetchval(taken, cb) == dial.attempt_id
        assert await write_result(
            db_pool, gate, c, dial, disposition, None, amd=None, answered=False,
            now=NOON + timedelta(seconds=5),
        )  # fmt: skip
        person = await db_pool.fetchval("SELECT person_id FROM leads WHERE id = $1", lead)
        async with db_pool.acquire() as conn:
            assert [p.id for p in await pending_callbacks(conn, person)] == [cb], disposition
        # ... and its lead is due for it at once, not at the retry schedule's time.
        row = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", lead)
        assert (row["state"], row["next_try_at"]) == ("ready", due), disposition
        async with db_pool.acquire() as conn:  # (out of the next round's way)
            assert await cancel_callback(conn, cb, at=NOON)


async def test_a_callback_asked_for_on_a_leads_last_try_keeps_the_lead(db_pool, campaign) -> None:
    # The debtor asks for a callback during the call that uses the lead's last try
    # (max_attempts): the schedule would end the lead, and the callback would wait forever
    # for a lead of its debt that never comes.
    cid, code = campaign
    await db_pool.execute(
        """UPDATE campaigns SET retry_schedule = '{"default": 60, "max_attempts": 1}'
           WHERE id = $1""",
        cid,
    )
    c = await Campaign.load(db_pool, code)
    dial = await _claim(db_pool, campaign)
    due = NOON + timedelta(minutes=30)
    cb = await _schedule(db_pool, dial.lead_id, due)
    assert await write_result(
        db_pool, ComplianceGate(db_pool), c, dial, "hangup", None, amd="HUMAN", answered=True,
        now=NOON + timedelta(minutes=1),
    )  # fmt: skip
    row = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", dial.lead_id)
    assert (row["state"], row["next_try_at"]) == ("ready", due)
    again = await _claim(db_pool, campaign, due)
    assert again.lead_id == dial.lead_id
    assert await db_pool.fetchval("SELECT attempt_id::text FROM callbacks WHERE id = $1", cb) == (
        again.attempt_id
    )


HUMAN = {
    "seed": 7,
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.5},
    "talk_s": {"dist": "fixed", "value": 2.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
}


async def test_a_call_answered_while_the_ami_link_was_down_ends_with_its_disposition(
    db_pool, tmp_path: Path
) -> None:
    # The Originate is sent and the call rings; the link stalls, the callee answers (the
    # OriginateResponse is written to the stalled link), the link drops. After the reconnect
    # CoreShowChannels says the channel is Up. The runner went on treating it as ringing: its
    # Hangup did not end it, and it ended 'lost' after stale_after_s (120 s in service), with
    # an agent's conversation on it and the lead retried.
    _, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    async with floor(db_pool, model=HUMAN, agents=1) as f:
        runner = await f.runner_for(code, tick_s=0.2, stale_after_s=8.0)
        async with running(runner, f.clients[0]):  # (aborted if the test fails)
            aid = await answered_while_stalled(runner, f.sim)
            f.sim.drop_ami()
            f.sim.resume_ami()
            async with asyncio.timeout(30):
                while runner.calls:  # noqa: ASYNC110 - the runner's state
                    await asyncio.sleep(0.1)
    row = await db_pool.fetchrow(
        "SELECT disposition, answered_at FROM call_attempts WHERE id = $1::uuid", aid
    )
    assert row["disposition"] != "lost"
    assert row["answered_at"] is not None


async def test_the_new_pacer_settles_what_a_dead_pacer_left_on_their_shared_pbx(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # Two nodes on one Asterisk (one dialer.pbx name). The pacer dies (kill -9: its lock's
    # session ends, its AMI link drops) with a call up; the standby takes the lock within a
    # tick, when that attempt is seconds old: "younger than _YOUNG_S, maybe still in a live
    # pacer's hands", it is left alone, and it was never looked at again: open for good, its
    # lead in_call, until the dead node came back (with two Asterisks a node settles its own
    # on restart; on a shared one the README says the new pacer does).
    monkeypatch.setattr(runner_module, "_YOUNG_S", 3.0)
    monkeypatch.setattr(runner_module, "_WINDOW_READ_S", 1.0)  # (the leader's upkeep period)
    monkeypatch.setattr(runner_module, "_DEAD_AFTER_S", 1.0)  # (absent this long: dead)
    _, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    # Each node's presence session (the dialer component's): n1's ends with it.
    presences = {node: Presence(db_pool, node) for node in ("n1", "n2")}
    for presence in presences.values():
        await presence.ensure()
    async with floor(db_pool, model=HUMAN, agents=1) as f:
        dead = await f.runner_for(code, node="n1", tick_s=0.2)
        taker = await f.runner_for(code, node="n2", tick_s=0.2)
        # The service's clock: the real time, as created_at has it (the floor's NOON is days
        # ahead, which makes every attempt look old; the taker dials nothing here).
        taker.clock = lambda: datetime.now(UTC)
        async with asyncio.TaskGroup() as tg:
            await dead.start(tg)
            f.clients[0].start()
            async with asyncio.timeout(10):
                while not dead.calls:  # noqa: ASYNC110 - the runner's state
                    await asyncio.sleep(0.02)
            (aid,) = dead.calls
            await dead.abort()  # kill -9: the lock's session and the AMI link go with it
            await presences["n1"].close()  # ...and its presence session
            await f.clients[0].close()
            await taker.start(tg)
            f.clients[1].start()
            async with asyncio.timeout(10):
                while not taker.is_leader:  # noqa: ASYNC110 - the runner's state
                    await asyncio.sleep(0.05)

            async def settled() -> bool:
                state = "SELECT state FROM call_attempts WHERE id = $1::uuid"
                return await db_pool.fetchval(state, aid) == "final"

            try:
                async with asyncio.timeout(15):
                    while not await settled():  # noqa: ASYNC110 - the database
                        await asyncio.sleep(0.2)
            finally:
                await taker.stop()
                await presences["n2"].close()
    lead = await db_pool.fetchval(
        "SELECT l.state FROM leads l JOIN call_attempts a ON a.lead_id = l.id "
        "WHERE a.id = $1::uuid",
        aid,
    )
    assert lead in ("ready", "done", "cancelled")
