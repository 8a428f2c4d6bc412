"""A creditor with a full policy, a verified-able debtor and a debt, for IVR tests."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import date

import asyncpg

POLICY = {
    "second_factor": "dob",
    "discount_pct": 10,
    "discount_until": "2099-12-31",
    "settlement_min_pct": 60,
    "instalments": {
        "min_months": 2,
        "max_months": 6,
        "min_instalment_cents": 5000,
        "first_within_days": 30,
    },
    "promise_max_days": 30,
    "max_verify_failures": 3,
    "lockout_minutes": 30,
}
DOB = date(1980, 1, 1)
_n = itertools.count(1)


@dataclass(frozen=True)
class Debtor:
    creditor_id: int
    person_id: int
    debt_id: int
    phone_id: int
    account: str
    number: str
    dialed: str  # the creditor's published number (inbound DID)


async def debtor(
    conn: asyncpg.Connection,
    *,
    country: str = "MX",
    language: str = "es",
    balance_cents: int = 150000,
    currency: str = "MXN",
    policy: dict | None = None,
) -> Debtor:
    n = next(_n)
    dialed = f"+52555000{n:04d}"
    creditor = await conn.fetchval(
        "INSERT INTO creditors (code, name, public_name, callback_number, currency, policy)"
        " VALUES ($1, $2, 'Acme', $3, $4, $5::jsonb) RETURNING id",
        f"acme{n}",
        f"Acme {n}",
        dialed,
        currency,
        json.dumps(POLICY if policy is None else policy),
    )
    person = await conn.fetchval(
        "INSERT INTO persons (full_name, language, date_of_birth, country, region, postal_code)"
        " VALUES ($1, $2, $3, $4, $5, '06600') RETURNING id",
        f"Debtor {n}",
        language,
        DOB,
        country,
        "CMX" if country == "MX" else "TX",
    )
    account = f"{77000000 + n}"
    debt = await conn.fetchval(
        "INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency,"
        " days_past_due) VALUES ($1, $2, $3, $4, $5, 90) RETURNING id",
        person,
        creditor,
        account,
        balance_cents,
        currency,
    )
    number = f"+525512{n:06d}" if country == "MX" else f"+151223{n:05d}"
    phone = await conn.fetchval(
        "INSERT INTO phone_numbers (person_id, e164, kind) VALUES ($1, $2, 'mobile') RETURNING id",
        person,
        number,
    )
    return Debtor(creditor, person, debt, phone, account, number, dialed)
