"""After a restart: adopt the calls Asterisk still has, settle the rest, release orphans."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from compliance import ComplianceGate
from dialer.importer import import_leads
from dialer.runner import Campaign, CampaignRunner
from dialer.selection import claim_and_gate
from pbx.agi import AgiServer, AgiSettings
from pbx.ami import AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from pbx.sim import (
    DEFAULT_DIALPLAN,
    CalleeModel,
    ModelFile,
    SimCore,
    SimServerSettings,
    SimulatedAsterisk,
    load_dialplan,
)

NOON = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # Wednesday, 12:00 in Mexico City


async def hold_then_hand_back(call: AudioSocketCall) -> None:
    await asyncio.sleep(3.0)
    await call.hangup()


async def test_restart_adopts_live_calls_settles_the_rest_and_releases_orphans(
    db_pool, tmp_path: Path
) -> None:
    code = f"c{os.urandom(4).hex()}"
    cred = await db_pool.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number)
           VALUES ($1, 'A', 'A', '+525500000000') RETURNING id""",
        code,
    )
    cid = await db_pool.fetchval(
        """INSERT INTO campaigns (code, name, creditor_id, mode, compliance_packs, queue_name,
                                  ring_timeout_s)
           VALUES ($1, 'T', $2, 'progressive', '{mx}', 'collections', 10) RETURNING id""",
        code,
        cred,
    )
    base = int.from_bytes(os.urandom(2), "big") % 9000
    f = tmp_path / "l.csv"
    f.write_text(
        "external_ref,full_name,account_ref,balance,phone,country\n"
        + "".join(
            f"{code}-{i},P,{code}-{i},1,+5255{30_000_000 + base * 10 + i},MX\n" for i in range(3)
        ),
        encoding="utf-8",
    )
    await import_leads(db_pool, f, code)
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

    audio = AudioSocketServer(hold_then_hand_back, AudioSocketSettings(port=0))
    agi = AgiServer({}, AgiSettings(port=0))
    await audio.start()
    await agi.start()
    spec = msgspec.convert(
        {"outcomes": {"human": 1.0}, "ring_s": {"dist": "fixed", "value": 0.2},
         "patience_s": {"dist": "fixed", "value": 60.0}},
        ModelFile,
    )  # fmt: skip
    sim = SimulatedAsterisk(
        SimCore(load_dialplan(DEFAULT_DIALPLAN), CalleeModel(spec)),
        SimServerSettings(
            ami_port=0, secret="x", audiosocket=f"127.0.0.1:{audio.port}",
            agi=f"127.0.0.1:{agi.port}",
        ),
    )  # fmt: skip
    await sim.start()
    client = AmiClient(AmiSettings(port=sim.ami_port, username="puente", secret="x"))
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

    t0 = time.monotonic()
    runner = CampaignRunner(  # the node after its restart
        db_pool, gate, client, await Campaign.load(db_pool, code), node="n1", pbx="sim",
        clock=lambda: NOON + timedelta(seconds=time.monotonic() - t0), tick_s=0.2,
    )  # fmt: skip
    try:
        async with asyncio.TaskGroup() as tg:
            await runner.start(tg)
            async with asyncio.timeout(15):
                while runner.stats.adopted < 1 or runner.calls:  # noqa: ASYNC110 - counters
                    await asyncio.sleep(0.1)
            await runner.stop()
    finally:
        await client.close()
        await sim.stop()
        await audio.stop(grace_s=0.5)
        await agi.stop(grace_s=0.5)

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
