"""``puente bench web``: screen pops under load, from Asterisk's AgentConnect to the agent's page.

One process runs the web app (agent desktop, its websocket hub), Puente's AMI client and a real
PostgreSQL seeded with debtors; the simulated Asterisk runs in the same process with N agents
in the queue. N agents log in (scrypt, cookies) and open the desktop's websocket; calls are
originated as the dialer does (the attempt row first) at a steady rate; every answered call
reaches an agent, and the figure is the time from Puente's AMI client reading the
AgentConnect event to the agent's websocket client receiving the pop (p50, p99, max). Goal:
within 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid

import aiohttp
import asyncpg
import msgspec
from aiohttp import web

from bench._common import CpuTimer, emit, percentile
from bench._db import fresh_database, server_url
from compliance import ComplianceGate
from db import DatabaseSettings, create_pool
from pbx.ami import AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from pbx.sim import CalleeModel, ModelFile, SimServerSettings, SimSettings
from pbx.sim import build as build_sim
from puente.heap import settle_heap
from web import WebSettings, create_app, hash_password
from web._desktop import desktop_extension

GOAL_MS = 200.0


async def _seed(pool: asyncpg.Pool, agents: int, calls: int) -> tuple[int, list[tuple]]:
    password = hash_password("bench-password")
    async with pool.acquire() as conn, conn.transaction():
        creditor = await conn.fetchval(
            "INSERT INTO creditors (code, name, public_name, callback_number, currency)"
            " VALUES ('bench', 'Bench', 'Bench', '+525550009999', 'MXN') RETURNING id"
        )
        campaign = await conn.fetchval(
            "INSERT INTO campaigns (code, name, creditor_id, state) VALUES"
            " ('bench-web', 'Bench', $1, 'running') RETURNING id",
            creditor,
        )
        for i in range(agents):
            uid = await conn.fetchval(
                "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, 'agent')"
                " RETURNING id",
                f"agent{i}",
                password,
            )
            await conn.execute(
                "INSERT INTO agents (code, name, interface, user_id) VALUES ($1, $1, $2, $3)",
                f"a{i}",
                f"Local/{100 + i}@agents",
                uid,
            )
        rows = await conn.fetch(
            "WITH p AS (INSERT INTO persons (full_name, country, region)"
            " SELECT 'Debtor ' || g, 'MX', 'CMX' FROM generate_series(1, $1) g RETURNING id),"
            " d AS (INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents,"
            " currency) SELECT id, $2, (80000000 + id)::text, 150000, 'MXN' FROM p"
            " RETURNING id, person_id)"
            " SELECT d.id AS debt_id, d.person_id FROM d",
            calls,
            creditor,
        )
        out = []
        for r in rows:
            number = f"+5255{10000000 + r['person_id']}"
            phone = await conn.fetchval(
                "INSERT INTO phone_numbers (person_id, e164) VALUES ($1, $2) RETURNING id",
                r["person_id"],
                number,
            )
            out.append((r["person_id"], r["debt_id"], phone, number))
    return campaign, out


async def _hand_back(call: AudioSocketCall) -> None:
    await call.hangup()


async def run(agents: int, calls: int, rate: float, talk_s: float) -> dict[str, object]:
    with server_url() as url:
        async with fresh_database(url, "web") as db_url:
            pool = await create_pool(db_url, DatabaseSettings(url=db_url, max_connections=20))
            try:
                campaign, debtors = await _seed(pool, agents, calls)
                return await _measure(pool, campaign, debtors, agents, rate, talk_s)
            finally:
                await pool.close()


async def _measure(
    pool: asyncpg.Pool, campaign: int, debtors: list[tuple], agents: int, rate: float,
    talk_s: float,
) -> dict[str, object]:  # fmt: skip
    spec = msgspec.convert(
        {
            "numbers": {n: "human" for *_, n in debtors},
            "ring_s": {"dist": "fixed", "value": 0.5},
            "patience_s": {"dist": "fixed", "value": 600.0},
            "talk_s": {"dist": "fixed", "value": talk_s},
        },
        ModelFile,
    )
    audio = AudioSocketServer(_hand_back, AudioSocketSettings(port=0))
    await audio.start()
    sim = build_sim(
        SimServerSettings(ami_port=0, secret="s", audiosocket=f"127.0.0.1:{audio.port}"),
        model=CalleeModel(spec),
        settings=SimSettings(agent_ring_s=0.1),
        agents=agents,
    )
    await sim.start()
    client = AmiClient(AmiSettings(port=sim.ami_port, username="puente", secret="s"))
    seen: dict[str, float] = {}  # Uniqueid -> when Puente's AMI client read AgentConnect
    client.subscribe(
        lambda m: seen.setdefault(m.get("Uniqueid") or "", time.perf_counter()), "AgentConnect"
    )
    client.start()
    await client.wait_connected(5)
    app = create_app(
        pool, WebSettings(port=0, login_attempts_per_min=1000), gate=ComplianceGate(pool),
        extensions=[desktop_extension(ami=lambda: client)],
    )  # fmt: skip
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    settle_heap()  # as the service does once started (puente.heap)
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    latencies: list[float] = []
    all_in = asyncio.Event()
    sessions: list[aiohttp.ClientSession] = []
    readers: list[asyncio.Task[None]] = []

    async def agent_page(i: int) -> None:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(http)
        r = await http.post(f"{base}/login", data={"username": f"agent{i}",
                                                  "password": "bench-password"})  # fmt: skip
        r.raise_for_status()
        ws = await http.ws_connect(f"{base}/agent/ws")

        async def read() -> None:
            async for msg in ws:
                got = time.perf_counter()
                pop = msg.json()
                t0 = seen.get(pop.get("attempt_id") or "")
                if t0 is not None:
                    latencies.append((got - t0) * 1000)
                    if len(latencies) >= len(debtors):
                        all_in.set()

        readers.append(asyncio.get_running_loop().create_task(read()))

    try:
        await asyncio.gather(*(agent_page(i) for i in range(agents)))
        with CpuTimer() as cpu:
            t_start = time.perf_counter()
            for i, (person, debt, phone, number) in enumerate(debtors):
                attempt = uuid.uuid4()
                await pool.execute(
                    "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, phone_id,"
                    " node, pbx, state) VALUES ($1, $2, $3, $4, $5, 'n', 'sim', 'originating')",
                    attempt, campaign, person, debt, phone,
                )  # fmt: skip
                await client.originate(
                    [("Channel", f"PJSIP/{number}@trunk"), ("Context", "puente-outbound"),
                     ("Exten", "s"), ("Priority", "1"), ("Timeout", "30000"),
                     ("ChannelId", str(attempt)),
                     ("Variable", [f"PUENTE_ATTEMPT={attempt}", "PUENTE_QUEUE=collections",
                                   "PUENTE_MODE=predictive", "PUENTE_QUEUE_TIMEOUT_S=600"])],
                    action_id=str(attempt),
                )  # fmt: skip
                await asyncio.sleep(max(0.0, t_start + (i + 1) / rate - time.perf_counter()))
            with contextlib.suppress(TimeoutError):  # calls queued behind busy agents
                async with asyncio.timeout(talk_s * len(debtors) / agents + 30):
                    await all_in.wait()
    finally:
        for t in readers:
            t.cancel()
        for http in sessions:
            await http.close()
        await runner.cleanup()
        await client.close()
        await sim.stop()
        await audio.stop(grace_s=0.5)
    ms = sorted(latencies)
    return {
        "calls": len(debtors),
        "pops": len(ms),
        "p50_ms": round(percentile(ms, 50), 2) if ms else None,
        "p99_ms": round(percentile(ms, 99), 2) if ms else None,
        "max_ms": round(ms[-1], 2) if ms else None,
        "process_cpu_share": round(cpu.cpu_share, 3),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench web", description=__doc__)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="calls originated per second")
    parser.add_argument("--talk-s", type=float, default=4.0)
    args = parser.parse_args(argv)
    stats = asyncio.run(run(args.agents, args.calls, args.rate, args.talk_s))
    emit(
        "web",
        agents=args.agents,
        rate_per_s=args.rate,
        **stats,
        goal_p99_ms=GOAL_MS,
        goal_met=(stats["p99_ms"] or 1e9) < GOAL_MS,
    )
    return 0
