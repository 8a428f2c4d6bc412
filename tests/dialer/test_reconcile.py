"""After a restart: adopt the calls Asterisk still has, settle the rest, release orphans."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path

from compliance import ComplianceGate
from dialer.runner import _ORPHANS
from dialer.selection import claim_and_gate
from pbx.audiosocket import AudioSocketCall
from tests._plans import generic_plan, scans
from tests.dialer._floor import NOON, floor, make_campaign

MODEL = {
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.2},
    "patience_s": {"dist": "fixed", "value": 60.0},
}


async def hold_then_hand_back(call: AudioSocketCall) -> None:
    await asyncio.sleep(3.0)
    await call.hangup()


async def test_restart_adopts_live_calls_settles_the_rest_and_releases_orphans(
    db_pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(
        db_pool, tmp_path, mode="progressive", leads=3, ring_timeout_s=10
    )
    gate = ComplianceGate(db_pool)
    # Before the "crash": two dials gated and recorded, only the first one sent...
    dials, _ = await claim_and_gate(
        db_pool, gate, campaign_id=cid, campaign_code=code, packs=["mx"], want=2, node="n1",
        pbx="sim", now=NOON,
    )  # fmt: skip
    assert len(dials) == 2
    # ...and a reservation that never became an attempt (stopped between gate and intent).
    person, debt, phone = await db_pool.fetchrow(
        "SELECT l.person_id, l.debt_id, n.id FROM leads l JOIN phone_numbers n "
        "USING (person_id) WHERE l.campaign_id = $1 AND l.state = 'ready'",
        cid,
    )
    orphan = uuid.uuid4()
    reserved = await gate.check_and_reserve(
        person_id=person, debt_ids=[debt], phone=phone, channel="autodialed_voice",
        packs=["mx"], now=NOON - timedelta(minutes=5), attempt_id=orphan, campaign=code,
    )  # fmt: skip
    assert reserved.reserved

    async with floor(db_pool, model=MODEL, agents=0, audio_handler=hold_then_hand_back) as f:
        runner = await f.runner_for(code, tick_s=0.2)  # the node after its restart
        client = f.clients[0]
        client.start()
        await client.wait_connected(5)
        sent = dials[0]
        handle = await client.originate(
            [("Channel", f"PJSIP/{sent.e164}@trunk"), ("Context", "puente-outbound"),
             ("Exten", "s"), ("Timeout", "10000"), ("ChannelId", sent.attempt_id),
             ("Variable", [f"PUENTE_ATTEMPT={sent.attempt_id}", "PUENTE_QUEUE=collections"])],
            action_id=sent.attempt_id,
        )  # fmt: skip
        assert (await handle.result(5))["Reason"] == "4"  # answered: in AudioSocket now
        async with asyncio.TaskGroup() as tg:
            await runner.start(tg)
            async with asyncio.timeout(15):
                while runner.stats.adopted < 1 or runner.calls:  # noqa: ASYNC110 - counters
                    await asyncio.sleep(0.1)
            await runner.stop()

    states = {
        str(r["id"]): (r["state"], r["disposition"])
        for r in await db_pool.fetch(
            "SELECT id, state, disposition FROM call_attempts WHERE campaign_id = $1", cid
        )
    }
    assert states[dials[1].attempt_id] == ("final", "lost")  # never sent; no channel
    assert states[sent.attempt_id][0] == "final"  # adopted, then ended by its own events
    assert states[sent.attempt_id][1] in ("abandoned", "hangup", "agent")
    assert runner.stats.adopted == 1
    assert runner.stats.released == 1
    assert (
        await db_pool.fetchval(
            "SELECT outcome FROM compliance_outcomes WHERE attempt_id = $1", orphan
        )
        == "not_placed"
    )


async def test_the_orphan_search_reads_the_campaigns_recent_reservations_only(
    db_pool, tmp_path: Path
) -> None:
    # A long ledger: 60,000 reservations of other campaigns and 20,000 old ones of this one.
    # At takeover the pacer reads only this campaign's reservations its caps still count, by
    # the campaign's index, whatever plan PostgreSQL caches for the statement.
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    person, debt = await db_pool.fetchrow(
        "SELECT person_id, debt_id FROM leads WHERE campaign_id = $1", cid
    )
    await db_pool.execute(
        """INSERT INTO compliance_attempts (attempt_id, person_id, debt_id, number_kind, channel,
                                            campaign, reserved_at)
           SELECT gen_random_uuid(), $1, $2, 'mobile', 'autodialed_voice',
                  CASE WHEN g % 4 = 0 THEN $3 ELSE 'other-' || (g % 7) END,
                  $4::timestamptz - (g % 1000) * interval '1 hour' - interval '30 days'
           FROM generate_series(1, 80000) g""",
        person,
        debt,
        code,
        NOON,
    )
    recent = uuid.uuid4()  # one orphan the caps still count
    await db_pool.execute(
        """INSERT INTO compliance_attempts (attempt_id, person_id, debt_id, number_kind, channel,
                                            campaign, reserved_at)
           VALUES ($1, $2, $3, 'mobile', 'autodialed_voice', $4, $5)""",
        recent,
        person,
        debt,
        code,
        NOON - timedelta(hours=1),
    )
    await db_pool.execute("ANALYZE compliance_attempts")
    since = NOON - timedelta(days=ComplianceGate(db_pool).rules(["mx"]).lookback_days)
    until = NOON - timedelta(seconds=30)
    assert [r[0] for r in await db_pool.fetch(_ORPHANS, code, until, since)] == [recent]
    plan = await generic_plan(
        db_pool, _ORPHANS, "text, timestamptz, timestamptz", code, until, since
    )
    nodes = scans(plan["Plan"])
    ledger = [s for s in nodes if s[1] == "compliance_attempts"]
    assert ledger, nodes
    assert all(s[0] != "Seq Scan" for s in ledger), nodes
    assert "compliance_attempts_campaign_idx" in {s[2] for s in nodes}, nodes
    assert sum(s[3] for s in ledger) <= 2, nodes  # the one recent reservation, not 80,000


async def test_an_answered_call_whose_hangup_never_came_is_ended_by_the_channel_audit(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # Only its channel's Hangup ends an answered call. With that event lost and the AMI link
    # up (so no reconnect's reconcile), the call held a line in flight, its lead 'in_call' and
    # its result unwritten for as long as the node ran. The audit finds the channel gone.
    import dialer.runner as runner_module

    monkeypatch.setattr(runner_module, "_AUDIT_S", 0.4)
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    model = {**MODEL, "talk_s": {"dist": "fixed", "value": 1.5}}
    async with floor(db_pool, model=model, agents=1) as f:
        runner = await f.runner_for(code, tick_s=0.2)
        hear = runner._on_event
        lost: list[str] = []

        def deaf_to_hangups(msg) -> None:
            if msg.name == "Hangup":
                lost.append(msg.get("Uniqueid") or "")
                return
            hear(msg)

        runner._on_event = deaf_to_hangups
        async with asyncio.TaskGroup() as tg:
            await runner.start(tg)
            f.clients[0].start()
            async with asyncio.timeout(20):
                while runner.stats.finals < 1:  # noqa: ASYNC110 - counters
                    await asyncio.sleep(0.1)
            await runner.stop()

    row = await db_pool.fetchrow(
        "SELECT id::text, state, disposition FROM call_attempts WHERE campaign_id = $1", cid
    )
    assert row["id"] in lost  # its Hangup came and was not heard...
    assert (row["state"], row["disposition"]) == ("final", "agent")  # ...yet it ended, as itself
    assert (
        await db_pool.fetchval("SELECT state FROM leads WHERE campaign_id = $1", cid) != "in_call"
    )


async def test_the_audit_waits_for_a_second_miss_and_spares_calls_asterisk_still_has(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # One miss may be a Hangup still on its way: a call ends only when two audits in a row
    # missed its channel. A call whose channel is there is never ended by the audit.
    import dialer.runner as runner_module
    from dialer.runner import _Call
    from dialer.selection import Dial
    from pbx.ami import ActionResult, AmiMessage

    monkeypatch.setattr(runner_module, "_AUDIT_S", 0.0)
    _, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code)
    gone, there, ringing = (str(uuid.uuid4()) for _ in range(3))
    for aid in (gone, there, ringing):
        runner.calls[aid] = _Call(Dial(aid, 1, 1, 1, 1, "+525512345678"), 0.0)
    runner.calls[gone].answered_at = runner.calls[there].answered_at = 0.0
    runner.calls[gone].amd = "MACHINE"
    # (just sent: a dial older than stale_after_s is looked for too, and ends if it is gone)
    runner.calls[ringing].sent_at = time.monotonic()

    async def send_action(action: str, fields=()) -> ActionResult:
        assert action == "CoreShowChannels"
        ok = AmiMessage.from_pairs([("Response", "Success")])
        channel = AmiMessage.from_pairs(
            [("Event", "CoreShowChannel"), ("Uniqueid", there), ("ChannelState", "6")]
        )
        return ActionResult(action, "x", ok, [channel])

    runner.ami = type("Ami", (), {"send_action": staticmethod(send_action)})()
    await runner._audit()
    assert runner._finals.empty()
    await runner._audit()
    assert [runner._finals.get_nowait()[:2]] == [(gone, "machine")]
    assert runner._finals.empty()
    assert not runner.calls[there].ending
    assert not runner.calls[ringing].ending
