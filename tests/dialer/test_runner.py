"""A campaign dialed through the simulated Asterisk over TCP, end to end."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from compliance import ComplianceGate
from dialer.importer import import_leads
from dialer.runner import Campaign, CampaignRunner
from pbx.agi import AgiServer, AgiSettings
from pbx.ami import AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from pbx.sim import (
    DEFAULT_DIALPLAN,
    CalleeModel,
    ModelFile,
    SimCore,
    SimServerSettings,
    SimSettings,
    SimulatedAsterisk,
    load_dialplan,
)

# Wednesday 2 December 2026, 12:00 in Mexico City.
NOON = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


async def hand_back(call: AudioSocketCall) -> None:
    await call.hangup()


@pytest.mark.parametrize("mode", ["progressive", "predictive"])
async def test_a_campaign_runs_and_every_attempt_ends_once(db_pool, tmp_path: Path, mode) -> None:
    code = f"c{os.urandom(4).hex()}"
    cred = await db_pool.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number, currency)
           VALUES ($1, 'Acme', 'Acme', '+525500000000', 'MXN') RETURNING id""",
        code,
    )
    await db_pool.execute(
        """INSERT INTO campaigns (code, name, creditor_id, mode, compliance_packs, ring_timeout_s,
                                  queue_name, trunk)
           VALUES ($1, 'T', $2, $3, '{mx}', 5, 'collections', 'PJSIP/trunk')""",
        code,
        cred,
        mode,
    )
    base = int.from_bytes(os.urandom(2), "big") % 9000
    f = tmp_path / "l.csv"
    f.write_text(
        "external_ref,full_name,account_ref,balance,phone,country,region\n"
        + "".join(
            f"{code}-{i},P {i},{code}-A{i},10,+5255{20_000_000 + base * 100 + i},MX,CMX\n"
            for i in range(40)
        ),
        encoding="utf-8",
    )
    assert (await import_leads(db_pool, f, code)).leads == 40

    audio = AudioSocketServer(hand_back, AudioSocketSettings(port=0))
    agi = AgiServer({}, AgiSettings(port=0))
    await audio.start()
    await agi.start()
    spec = msgspec.convert(
        {
            "seed": 5,
            "outcomes": {"human": 0.4, "busy": 0.2, "no_answer": 0.15, "unallocated": 0.1,
                         "machine": 0.15},
            "ring_s": {"dist": "fixed", "value": 0.3},
            "fail_after_s": {"dist": "fixed", "value": 0.1},
            "talk_s": {"dist": "fixed", "value": 1.0},
            "patience_s": {"dist": "fixed", "value": 30.0},
            "machine_greeting_s": {"dist": "fixed", "value": 0.5},
        },
        ModelFile,
    )  # fmt: skip
    core = SimCore(
        load_dialplan(DEFAULT_DIALPLAN),
        CalleeModel(spec),
        SimSettings(agent_ring_s=0.2, playback_s=0.2, machine_linger_s=1.0),
    )
    for i in range(3):
        core.add_member("collections", f"Local/{100 + i}@agents", f"Agent {i}", 0.0)
    sim = SimulatedAsterisk(
        core,
        SimServerSettings(
            ami_port=0,
            secret="x",
            audiosocket=f"127.0.0.1:{audio.port}",
            agi=f"127.0.0.1:{agi.port}",
        ),
    )
    await sim.start()
    client = AmiClient(AmiSettings(port=sim.ami_port, username="puente", secret="x"))
    t0 = time.monotonic()
    runner = CampaignRunner(
        db_pool,
        ComplianceGate(db_pool),
        client,
        await Campaign.load(db_pool, code),
        node="n1",
        pbx="sim",
        clock=lambda: NOON + timedelta(seconds=time.monotonic() - t0),
        tick_s=0.25,
        warmup_calls=5,
    )
    try:
        async with asyncio.TaskGroup() as tg:
            await runner.start(tg)  # subscribes before the first events
            client.start()
            await client.wait_connected(5)
            await asyncio.sleep(8)
            await runner.stop()
    finally:
        await client.close()
        await sim.stop()
        await audio.stop(grace_s=0.5)
        await agi.stop(grace_s=0.5)

    rows = await db_pool.fetch(
        "SELECT a.id, a.state, a.disposition FROM call_attempts a "
        "JOIN campaigns c ON c.id = a.campaign_id WHERE c.code = $1",
        code,
    )
    assert len(rows) == runner.stats.dials > 5
    assert all(r["state"] == "final" for r in rows), [r["state"] for r in rows]
    assert runner.stats.finals == len(rows), runner.stats  # each ended exactly once
    dispositions = {r["disposition"] for r in rows}
    assert {"busy", "agent"} <= dispositions
    busy = [r["id"] for r in rows if r["disposition"] == "busy"]
    assert await db_pool.fetchval(
        "SELECT count(*) FROM compliance_outcomes WHERE attempt_id = ANY($1) AND outcome = 'busy'",
        busy,
    ) == len(busy)
    states = await db_pool.fetch(
        "SELECT l.state, count(*) FROM leads l JOIN campaigns c ON c.id = l.campaign_id "
        "WHERE c.code = $1 GROUP BY 1",
        code,
    )
    assert {s["state"] for s in states} <= {"ready", "done", "cancelled"}
