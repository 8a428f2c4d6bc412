"""Test helpers: seed persons, debts and numbers into a migrated database."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import asyncpg

_counter = itertools.count(1)


@dataclass(frozen=True)
class Seeded:
    person_id: int
    debt_ids: tuple[int, ...]
    phone_ids: tuple[int, ...]
    numbers: tuple[str, ...]


async def creditor(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number)
           VALUES ('test', 'Test Creditor', 'Test', '+15550000000')
           ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name RETURNING id"""
    )


async def person(
    conn: asyncpg.Connection,
    *,
    country: str | None,
    region: str | None = None,
    postal_code: str | None = None,
    stated_timezone: str | None = None,
    numbers: tuple[tuple[str, str], ...] = (),
    debts: int = 1,
) -> Seeded:
    n = next(_counter)
    cred = await creditor(conn)
    pid = await conn.fetchval(
        """INSERT INTO persons (full_name, country, region, postal_code, stated_timezone)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        f"Person {n}",
        country,
        region,
        postal_code,
        stated_timezone,
    )
    debt_ids = []
    for i in range(debts):
        debt_ids.append(
            await conn.fetchval(
                """INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)
                   VALUES ($1, $2, $3, 10000, 'USD') RETURNING id""",
                pid,
                cred,
                f"acct-{pid}-{i}",
            )
        )
    phone_ids = []
    for e164, kind in numbers:
        phone_ids.append(
            await conn.fetchval(
                """INSERT INTO phone_numbers (person_id, e164, kind)
                   VALUES ($1, $2, $3) RETURNING id""",
                pid,
                e164,
                kind,
            )
        )
    return Seeded(pid, tuple(debt_ids), tuple(phone_ids), tuple(e for e, _ in numbers))
