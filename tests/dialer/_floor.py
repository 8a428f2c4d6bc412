"""A campaign on the real database and a simulated floor over TCP, for dialer tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec

from compliance import ComplianceGate
from compliance._time import holiday_names
from dialer.campaigns import Campaign
from dialer.importer import import_leads
from dialer.runner import CampaignRunner
from pbx.agi import AgiServer, AgiSettings
from pbx.ami import AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from pbx.sim import (
    CalleeModel,
    ModelFile,
    SimServerSettings,
    SimSettings,
    SimulatedAsterisk,
)
from pbx.sim import build as build_sim


def dialing_noon(today: date) -> datetime:
    """The dialer tests' "now": a Wednesday, 12:00 in Mexico City (18:00 UTC: Mexico keeps no
    DST), at least two days after ``today`` and no public holiday in Mexico, Colombia, Spain or
    the US. What the tests write gets the database's now() (a lead's first try, a callback's
    creation), so a fixed date would fall behind the real clock, and the tests with it."""
    day = today + timedelta(days=2)
    while True:
        day += timedelta(days=(2 - day.weekday()) % 7)  # the next Wednesday
        if not any(day in holiday_names(c, None, day.year) for c in ("MX", "CO", "ES", "US")):
            return datetime(day.year, day.month, day.day, 18, 0, tzinfo=UTC)
        day += timedelta(days=1)


NOON = dialing_noon(datetime.now(UTC).date())


async def hand_back(call: AudioSocketCall) -> None:
    await call.hangup()


async def make_campaign(
    pool: asyncpg.Pool,
    tmp_path: Path,
    *,
    mode: str,
    leads: int,
    ring_timeout_s: int = 5,
    queue_wrapup_s: float = 0.0,
) -> tuple[int, str]:
    """A running campaign of ``leads`` MX leads on the queue ``collections``, whose wrap-up
    (``queue_wrapup_s``) is the simulator's queue's."""
    code = f"c{os.urandom(4).hex()}"
    cred = await pool.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number, currency, contact_name)
           VALUES ($1, 'Acme', 'Acme', '+525500000000', 'MXN', 'Ana Ruiz') RETURNING id""",
        code,
    )
    cid = await pool.fetchval(
        """INSERT INTO campaigns (code, name, creditor_id, mode, compliance_packs, ring_timeout_s,
                                  queue_name, trunk, state, settings)
           VALUES ($1, 'T', $2, $3, '{mx}', $4, 'collections', 'PJSIP/trunk', 'running',
                   jsonb_build_object('queue_wrapup_s', $5::float8))
           RETURNING id""",
        code,
        cred,
        mode,
        ring_timeout_s,
        queue_wrapup_s,
    )
    base = int.from_bytes(os.urandom(3), "big") % 90_000
    rows = "".join(
        f"{code}-{i},P {i},{code}-A{i},10,+5255{10_000_000 + (base * 100 + i) % 89_999_999},MX\n"
        for i in range(leads)
    )
    f = tmp_path / f"{code}.csv"
    f.write_text(
        "external_ref,full_name,account_ref,balance,phone,country\n" + rows, encoding="utf-8"
    )
    await import_leads(pool, f, code)
    return cid, code


@dataclass
class Floor:
    sim: SimulatedAsterisk
    clients: list[AmiClient]
    runner_for: Callable[..., Awaitable[CampaignRunner]]


@contextlib.asynccontextmanager
async def floor(
    pool: asyncpg.Pool,
    *,
    model: dict,
    agents: int,
    audio_handler: Callable[[AudioSocketCall], Awaitable[None]] = hand_back,
) -> AsyncIterator[Floor]:
    audio = AudioSocketServer(audio_handler, AudioSocketSettings(port=0))
    agi = AgiServer({}, AgiSettings(port=0))
    await audio.start()
    await agi.start()
    sim = build_sim(
        SimServerSettings(
            ami_port=0, secret="x", audiosocket=f"127.0.0.1:{audio.port}",
            agi=f"127.0.0.1:{agi.port}",
        ),
        model=CalleeModel(msgspec.convert(model, ModelFile)),
        settings=SimSettings(agent_ring_s=0.2, playback_s=0.2, machine_linger_s=1.0),
        agents=agents,
    )  # fmt: skip
    await sim.start()
    clients: list[AmiClient] = []
    t0 = time.monotonic()

    async def runner_for(code: str, node: str = "n1", **kw: object) -> CampaignRunner:
        client = AmiClient(AmiSettings(port=sim.ami_port, username="puente", secret="x"))
        clients.append(client)
        return CampaignRunner(
            pool, ComplianceGate(pool), client, await Campaign.load(pool, code), node=node,
            pbx="sim", clock=lambda: NOON + timedelta(seconds=time.monotonic() - t0),
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    try:
        yield Floor(sim, clients, runner_for)
    finally:
        for c in clients:
            await c.close()
        await sim.stop()
        await audio.stop(grace_s=0.5)
        await agi.stop(grace_s=0.5)


@contextlib.asynccontextmanager
async def running(runner: CampaignRunner, client: AmiClient) -> AsyncIterator[None]:
    """The runner paces while the block runs; stopped after it (aborted if it fails: a
    failed wait must fail the test, not leave the runner's task going)."""
    async with asyncio.TaskGroup() as tg:
        await runner.start(tg)
        client.start()
        try:
            yield
        except BaseException:
            await runner.abort()
            raise
        await runner.stop()


async def poll_until(check: Callable[[], Awaitable[bool]], timeout_s: float = 15) -> None:
    """Until ``check()`` is true (TimeoutError after ``timeout_s``)."""
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.05)


async def preview_request(pool: asyncpg.Pool, cid: int, agent: str) -> int:
    """An agent (made if new) asks campaign ``cid`` for a lead: the request's id."""
    agent_id = await pool.fetchval(
        "INSERT INTO agents (code, name, interface) VALUES ($1, $1, $2)"
        " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        agent,
        f"Local/{agent}@agents",
    )
    return await pool.fetchval(
        "INSERT INTO preview_requests (campaign_id, agent_id) VALUES ($1, $2) RETURNING id",
        cid,
        agent_id,
    )


async def answered_while_stalled(runner: CampaignRunner, sim: SimulatedAsterisk) -> str:
    """The runner's first call, answered on the simulator while the AMI link is stalled (its
    OriginateResponse goes to the stalled link): its attempt id."""
    async with asyncio.timeout(10):
        while not runner.calls:  # noqa: ASYNC110 - the runner's state
            await asyncio.sleep(0.02)
    sim.stall_ami()
    (aid,) = runner.calls
    # Answered on the simulator (the runner follows the call before its Originate is sent: the
    # channel may not be there yet; a busy machine made this a KeyError).
    async with asyncio.timeout(10):
        while (ch := sim.core.channels.get(aid)) is None or ch.snap.state != 6:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return aid
