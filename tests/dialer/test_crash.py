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
import os
import random
import signal
import socket
import sys
from pathlib import Path

import asyncpg
import msgspec

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
from tests.dialer._floor import make_campaign

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
# A pack that allows every hour, so the test does not depend on when it runs.
ANYTIME = """\
pack: anytime
title: "Test pack: calls at any hour"
jurisdiction: MX
rules:
  - id: anytime_hours
    kind: calling_window
    summary: "any hour"
    citation: "test"
    hours:
{days}
"""
LEDGER = {
    "busy": "busy",
    "unallocated": "not_in_service",
    "no_answer": "no_answer",
    "rejected": "no_answer",
    "unreachable": "no_answer",
    "congestion": "network_failure",
    "failed": "not_placed",
    "machine": "machine",
    "abandoned": "abandoned",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _until(check, timeout_s: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 - polling the database and the simulator
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_kill_9_at_random_points_then_restart(database_url: str, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    days = "\n".join(f"      {d}: [\"00:00-24:00\"]" for d in
                     ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))  # fmt: skip
    (packs / "anytime.yaml").write_text(ANYTIME.format(days=days), encoding="utf-8")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    cid, code = await make_campaign(pool, tmp_path, mode="predictive", leads=60)
    await pool.execute("UPDATE campaigns SET compliance_packs = '{anytime}' WHERE id = $1", cid)

    audio_port, agi_port = _free_port(), _free_port()
    core = SimCore(
        load_dialplan(DEFAULT_DIALPLAN),
        CalleeModel(msgspec.convert(MODEL, ModelFile)),
        SimSettings(agent_ring_s=0.2, playback_s=0.2, machine_linger_s=0.5),
    )
    for i in range(4):
        core.add_member("collections", f"Local/{100 + i}@agents", f"Agent {i}", 0.0, wrapup_s=0.5)
    originated: list[str] = []
    real_originate = core.originate

    def recording_originate(conn, fields, variables, now):  # the simulator's own record
        originated.append(fields.get("channelid", ""))
        return real_originate(conn, fields, variables, now)

    core.originate = recording_originate  # type: ignore[method-assign]
    sim = SimulatedAsterisk(
        core,
        SimServerSettings(
            ami_port=0, secret="x", audiosocket=f"127.0.0.1:{audio_port}",
            agi=f"127.0.0.1:{agi_port}",
        ),
    )  # fmt: skip
    await sim.start()
    env = {
        **os.environ,
        "PUENTE_DATABASE_URL": database_url,
        "PUENTE_AMI_PORT": str(sim.ami_port),
        "PUENTE_AMI_SECRET": "x",
        "PUENTE_AGI_PORT": str(agi_port),
        "PUENTE_AUDIOSOCKET_PORT": str(audio_port),
        "PUENTE_NODE_NAME": "n1",
        "PUENTE_NODE_SHUTDOWN_GRACE_S": "10",
        "PUENTE_DIALER_PBX": "sim",
        "PUENTE_DIALER_TICK_S": "0.2",
        "PUENTE_DIALER_REFRESH_S": "0.5",
        "PUENTE_COMPLIANCE_PACK_DIR": str(packs),
    }
    env.pop("PUENTE_CONFIG", None)

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "puente", "run", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def attempts() -> int:
        return await pool.fetchval("SELECT count(*) FROM call_attempts WHERE campaign_id = $1", cid)

    rng = random.Random()
    kills = 0
    proc = None
    try:
        for _ in range(3):
            proc = await start()
            before = await attempts()
            await _until(lambda b=before: _more(attempts, b + 2), 30, "the service to dial")
            await asyncio.sleep(rng.uniform(0.0, 1.5))  # somewhere in the middle of things
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            kills += 1
        proc = await start()
        before = await attempts()
        await _until(lambda b=before: _more(attempts, b + 2), 30, "the restarted service to dial")
        await asyncio.sleep(2)
        await pool.execute("UPDATE campaigns SET state = 'paused' WHERE id = $1", cid)

        async def settled() -> bool:
            open_ = await pool.fetchval(
                "SELECT count(*) FROM call_attempts WHERE campaign_id = $1 AND state <> 'final'",
                cid,
            )
            return open_ == 0 and not any(not c.gone for c in core.channels.values())

        await _until(settled, 60, "every attempt to end")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-3000:]
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sim.stop()

    rows = await pool.fetch(
        "SELECT id::text AS id, state, disposition FROM call_attempts WHERE campaign_id = $1", cid
    )
    ids = {r["id"] for r in rows}
    assert kills == 3
    assert len(rows) >= 8
    # Every attempt has exactly one final disposition.
    assert all(r["state"] == "final" and r["disposition"] for r in rows), rows
    # Nothing dialed twice, nothing dialed without its attempt row.
    counts = collections.Counter(originated)
    assert counts
    assert max(counts.values()) == 1, counts.most_common(3)
    assert set(counts) <= ids
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
        got = outcomes.get(r["id"])
        assert got == ([want] if want else None), (r["disposition"], got)
    assert len(originated) <= len(rows)  # an attempt whose Originate was never sent is lost
    await pool.close()


async def _more(count, than: int) -> bool:
    return await count() >= than
