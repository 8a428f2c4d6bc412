"""``puente bench leads``: rows per second through ``puente leads import``, on the real database.

A deterministic lead file (``--rows``, seeded) is written first: debtors in MX, CO, ES and the
US, national and E.164 numbers, one to three numbers and one or two debts per person, and
about 2 % bad rows (bad balances, unusable numbers, missing names). It is then imported into
a fresh database with the same code as the command; the figure is rows read per second over
the whole import (parsing, normalising every number, COPY and merge), with the process's peak
memory to show the file is streamed. ``--lanes 1 2`` measures each lane count in turn (a fresh
database each). Goal: >= 20,000 rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
from pathlib import Path

from bench._common import CpuTimer, emit
from bench._db import fresh_database, server_url
from db import DatabaseSettings, create_pool
from dialer.importer import DEFAULT_LANES, import_leads

GOAL_ROWS_PER_S = 20_000
HEADER = (
    "external_ref,full_name,account_ref,balance,phone,phone2,phone3,country,region,"
    "postal_code,days_past_due,priority\n"
)
COUNTRIES = (
    ("MX", "JAL", "44100", lambda r: f"33 {r.randrange(1000, 9999)} {r.randrange(1000, 9999)}"),
    ("MX", "CMX", "06000", lambda r: f"+52 55 {r.randrange(1000, 9999)} {r.randrange(1000, 9999)}"),
    ("CO", "DC", "110111", lambda r: f"300 {r.randrange(100, 999)} {r.randrange(1000, 9999)}"),
    ("ES", "MD", "28001", lambda r: f"6{r.randrange(10_000_000, 99_999_999)}"),
    ("US", "TX", "75001", lambda r: f"(214) 555-{r.randrange(1000, 9999)}"),
)


def write_file(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        person = 0
        written = 0
        while written < rows:
            person += 1
            country, region, postal, number = rng.choice(COUNTRIES)
            phones = [number(rng) for _ in range(rng.choice((1, 1, 2, 3)))]
            phones += [""] * (3 - len(phones))
            for _ in range(rng.choice((1, 1, 1, 2))):
                written += 1
                balance = f"{rng.randrange(100, 500_000) / 100:.2f}"
                name = f"Persona {person}"
                x = rng.random()
                if x < 0.007:
                    balance = "n/a"
                elif x < 0.014:
                    name = ""
                elif x < 0.02:
                    phones = ["12", "", ""]
                f.write(
                    f"P{person},{name},ACC-{written},{balance},{phones[0]},{phones[1]},"
                    f"{phones[2]},{country},{region},{postal},{rng.randrange(0, 400)},"
                    f"{rng.randrange(0, 10)}\n"
                )


async def run(url: str, path: Path, lanes: int) -> dict[str, object]:
    async with fresh_database(url, "leads") as bench_url:
        pool = await create_pool(bench_url, DatabaseSettings(url=bench_url, min_connections=1))
        try:
            cred = await pool.fetchval(
                """INSERT INTO creditors (code, name, public_name, callback_number, currency)
                   VALUES ('bench', 'Bench', 'Bench', '+525500000000', 'MXN') RETURNING id"""
            )
            await pool.execute(
                "INSERT INTO campaigns (code, name, creditor_id) VALUES ('bench', 'Bench', $1)",
                cred,
            )
            with CpuTimer() as cpu:
                s = await import_leads(
                    pool, path, "bench", errors_path=path.with_suffix(".errors.csv"), lanes=lanes
                )
        finally:
            await pool.close()
    return {
        "lanes": lanes,
        "rows_per_s": round(s.rows / cpu.wall_s),
        "rows": s.rows,
        "loaded": s.loaded,
        "rejected": s.rejected,
        "numbers_dropped": s.numbers_dropped,
        "persons": s.persons,
        "debts": s.debts,
        "numbers": s.numbers,
        "leads": s.leads,
        "seconds": round(cpu.wall_s, 2),
        "client_cpu_share": round(cpu.cpu_share, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench leads", description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--lanes",
        type=int,
        nargs="+",
        default=[DEFAULT_LANES],
        help=f"lanes to measure, one import each (default {DEFAULT_LANES}, the command's)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="puente-bench-leads-") as tmp:
        path = Path(tmp) / "leads.csv"
        write_file(path, args.rows, args.seed)
        size_mb = path.stat().st_size / 1e6
        with server_url() as url:
            for lanes in args.lanes:
                stats = asyncio.run(run(url, path, lanes))
                emit(
                    "leads",
                    file_mb=round(size_mb, 1),
                    **stats,
                    goal_rows_per_s=GOAL_ROWS_PER_S,
                    goal_met=stats["rows_per_s"] >= GOAL_ROWS_PER_S,  # type: ignore[operator]
                )
    return 0
