"""``puente bench compliance``: decisions reserved per second in the real PostgreSQL ledger.

Each decision is what the dialer does before every dial: one transaction that takes the
person's lock, reads their history, decides with the packs (US federal + Massachusetts here,
the strictest caps we ship) and stores the decision and, when allowed, the reservation.

The database: ``PUENTE_DATABASE_URL`` or the embedded server (``.puente/pg-bench``); a fresh
database is created for the run and dropped after it. ``--persons`` debtors are seeded; each
worker picks persons at random, so some reach their caps and are denied (those decisions are
stored too, and counted: they cost the same).

Runs: one worker (one connection, one decision per transaction); ``--workers`` concurrent
workers, one decision per transaction; and the same workers gating ``--batch`` dials per call
(:meth:`ComplianceGate.check_and_reserve_many`, what a pacer tick asks for: one transaction
per round of distinct persons). Goal: >= 2,000 decisions/s with 4 workers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from bench._common import CpuTimer, emit
from bench._db import fresh_database, server_url
from compliance import ComplianceGate, DialRequest, number_info
from db import DatabaseSettings, create_pool

GOAL_PER_S = 2000
PACKS = ("us_federal", "us_ma")


async def seed(conn: asyncpg.Connection, persons: int) -> list[tuple[int, int, str]]:
    cred = await conn.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number)
           VALUES ('bench', 'Bench Creditor', 'Bench', '+16175550100') RETURNING id"""
    )
    rows = await conn.fetch(
        """
        WITH p AS (
            INSERT INTO persons (full_name, country, region, postal_code)
            SELECT 'Bench ' || i, 'US', 'MA', '02108' FROM generate_series(1, $1) AS i
            RETURNING id
        ), d AS (
            INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)
            SELECT id, $2, 'bench-' || id, 50000, 'USD' FROM p RETURNING id, person_id
        ), n AS (
            INSERT INTO phone_numbers (person_id, e164, kind)
            SELECT id, '+1617' || lpad((2000000 + id % 7000000)::text, 7, '0'), 'mobile' FROM p
            RETURNING person_id, e164
        )
        SELECT d.person_id, d.id AS debt_id, n.e164 FROM d JOIN n USING (person_id)
        """,
        persons,
        cred,
    )
    return [(r["person_id"], r["debt_id"], r["e164"]) for r in rows]


async def worker(
    gate: ComplianceGate,
    people: list[tuple[int, int, str]],
    until: float,
    rng: random.Random,
    start: datetime,
    counts: dict[str, int],
    latencies: list[float],
    batch: int,
) -> None:
    step = 0
    while time.perf_counter() < until:
        step += 1
        now = start + timedelta(seconds=step * 7)  # inside the window for the whole run
        picks = [rng.choice(people) for _ in range(batch)]
        t0 = time.perf_counter()
        if batch == 1:
            person, debt, e164 = picks[0]
            decisions = [
                await gate.check_and_reserve(
                    person_id=person,
                    debt_ids=[debt],
                    phone=e164,
                    channel="voice",
                    packs=PACKS,
                    now=now,
                    attempt_id=uuid.uuid4(),
                )
            ]
        else:
            decisions = await gate.check_and_reserve_many(
                [DialRequest(p, (d,), e, uuid.uuid4()) for p, d, e in picks],
                packs=PACKS,
                now=now,
            )
        latencies.append(time.perf_counter() - t0)
        for decision in decisions:
            counts["decisions"] += 1
            counts["allowed"] += decision.allowed
            if decision.reasons and decision.reasons[0].code == "COMPLIANCE_UNAVAILABLE":
                counts["unavailable"] += 1


async def run(
    url: str, persons: int, workers: int, seconds: float, batch: int
) -> dict[str, object]:
    async with fresh_database(url, "compliance") as bench_url:
        conn = await asyncpg.connect(bench_url)
        people = await seed(conn, persons)
        await conn.close()
        pool = await create_pool(
            bench_url,
            DatabaseSettings(url=bench_url, min_connections=workers, max_connections=workers),
        )
        try:
            gate = ComplianceGate(pool)
            gate.rules(PACKS)  # compile the packs before timing
            number_info.cache_clear()  # each run starts cold: every number is parsed once
            counts = {"decisions": 0, "allowed": 0, "unavailable": 0}
            latencies: list[float] = []
            start = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in Boston
            with CpuTimer() as cpu:
                until = time.perf_counter() + seconds
                await asyncio.gather(
                    *(
                        worker(
                            gate, people, until, random.Random(i), start, counts, latencies, batch
                        )
                        for i in range(workers)
                    )
                )
        finally:
            await pool.close()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "decisions_per_s": round(counts["decisions"] / cpu.wall_s),
        "allowed_share": round(counts["allowed"] / max(1, counts["decisions"]), 3),
        "unavailable": counts["unavailable"],
        "call_p50_ms": round(ms[len(ms) // 2], 2) if ms else None,
        "call_p99_ms": round(ms[int(len(ms) * 0.99)], 2) if ms else None,
        "client_cpu_share": round(cpu.cpu_share, 3),
        "decisions": counts["decisions"],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench compliance", description=__doc__)
    parser.add_argument(
        "--persons", type=int, default=30000, help="enough that most dials are allowed"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0, help="per run")
    parser.add_argument("--batch", type=int, default=10, help="dials per pacer tick (last run)")
    args = parser.parse_args(argv)
    with server_url() as url:
        runs = ((1, 1), (args.workers, 1), (args.workers, args.batch))
        for workers, batch in runs:
            stats = asyncio.run(run(url, args.persons, workers, args.seconds, batch))
            emit(
                "compliance",
                workers=workers,
                batch=batch,
                packs=list(PACKS),
                persons=args.persons,
                **stats,
                goal_decisions_per_s=GOAL_PER_S,
                goal_met=stats["decisions_per_s"] >= GOAL_PER_S  # type: ignore[operator]
                if workers == args.workers
                else None,
            )
    return 0
