"""``puente bench ivr``: 1,000 concurrent IVR sessions through the real collections flow.

One process runs Puente's FastAGI server with the shipped flows, their actions and a real
PostgreSQL (a fresh database seeded with debtors). A separate process (``bench._ivr_peer``)
plays Asterisk for every session with the simulator's scripted caller: the caller enters an
account, a date of birth and takes the pay-in-full promise, so every session runs the identity
check, the disclosures, the offers and a promise write. Finished sessions are replaced by new
callers until the run ends.

Figures: ``p99_ms``, the time Puente takes per AGI command (from Asterisk's answer to Puente's
next command, database actions included), and ``sessions_per_s``. One JSON line per think time
(how long the caller side takes to answer each command; a real prompt lasts seconds): the last
one, 1,000 ms, is the realistic one the goal (p99 < 5 ms) is judged on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import asyncpg

from bench._common import CpuTimer, GcPauses, emit
from bench._db import fresh_database, server_url
from db import DatabaseSettings, create_pool
from ivr import IvrSettings, build_ivr
from pbx.agi import AgiServer, AgiSettings
from puente.heap import settle_heap

GOAL_P99_MS = 5.0
POLICY = {"discount_pct": 10, "discount_until": "2099-12-31", "settlement_min_pct": 60}


async def _seed(pool: asyncpg.Pool, debtors: int) -> list[tuple[str, str, str]]:
    async with pool.acquire() as conn, conn.transaction():
        creditor = await conn.fetchval(
            "INSERT INTO creditors (code, name, public_name, callback_number, currency, policy)"
            " VALUES ('bench', 'Bench', 'Bench', '+525550009999', 'MXN', $1::jsonb) RETURNING id",
            json.dumps(POLICY),
        )
        await conn.execute(
            "INSERT INTO persons (full_name, language, date_of_birth, country, region,"
            " postal_code) SELECT 'Debtor ' || g, 'es', '1980-01-01', 'MX', 'CMX', '06600'"
            " FROM generate_series(1, $1) g",
            debtors,
        )
        rows = await conn.fetch(
            "INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)"
            " SELECT id, $1, (80000000 + id)::text, 150000, 'MXN' FROM persons"
            " RETURNING person_id, account_ref",
            creditor,
        )
    return [(f"+5255{10000000 + r['person_id']}", "5550009999", r["account_ref"]) for r in rows]


async def run(sessions: int, seconds: float, think_ms: float, debtors: int) -> dict[str, object]:
    with server_url() as url:
        async with fresh_database(url, "ivr") as db_url:
            pool = await create_pool(db_url, DatabaseSettings(url=db_url, max_connections=20))
            try:
                accounts = await _seed(pool, debtors)
                service = build_ivr(pool, IvrSettings(), gate=None, node="bench")
                server = AgiServer(
                    service.routes(), AgiSettings(port=0, max_sessions=sessions + 100)
                )
                await server.start()
                settle_heap()  # as the service does once started (puente.heap)
                try:
                    with CpuTimer() as cpu, GcPauses() as pauses:
                        peer = await asyncio.create_subprocess_exec(
                            sys.executable,
                            "-m",
                            "bench._ivr_peer",
                            str(server.port),
                            str(sessions),
                            str(seconds),
                            str(think_ms),
                            stdin=asyncio.subprocess.PIPE,
                            stdout=asyncio.subprocess.PIPE,
                        )
                        out, _ = await peer.communicate(json.dumps(accounts).encode())
                    if peer.returncode != 0:
                        failed = f"the load generator failed ({peer.returncode})"
                        raise SystemExit(f"bench ivr: {failed}")
                    stats = json.loads(out)
                finally:
                    await server.stop(grace_s=2)
                promises = await pool.fetchval("SELECT count(*) FROM promises")
                outcomes = dict(service.outcomes)
            finally:
                await pool.close()
    return {
        **stats,
        "promises_written": promises,
        "outcomes": outcomes,
        "action_errors": service.action_errors_total,
        "server_cpu_share": round(cpu.cpu_share, 3),
        "server_errors": server.errors_total + server.timeouts_total,
        **pauses.figures(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench ivr", description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="per run")
    parser.add_argument("--debtors", type=int, default=5000)
    parser.add_argument(
        "--think-ms", type=float, nargs="+", default=[100.0, 1000.0],
        help="think times to run (the last is the realistic one the goal is judged on)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for i, think in enumerate(args.think_ms):
        realistic = i == len(args.think_ms) - 1
        stats = asyncio.run(run(args.sessions, args.seconds, think, args.debtors))
        emit(
            "ivr",
            mode="realistic" if realistic else "busy",
            sessions=args.sessions,
            think_ms=think,
            **stats,
            goal_p99_ms=GOAL_P99_MS,
            goal_met=(stats["p99_ms"] or 1e9) < GOAL_P99_MS if realistic else None,
        )
    return 0
