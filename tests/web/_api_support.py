"""Helpers for the API tests: a served app, users with tokens, seeded debtors and calls."""

from __future__ import annotations

import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from web import AccessLogger, WebSettings, create_app
from web._users import add_user, new_token

PASSWORD = "correct horse battery"
POLICY = {
    "second_factor": "dob",
    "settlement_min_pct": 60,
    "instalments": {
        "min_months": 2,
        "max_months": 6,
        "min_instalment_cents": 5000,
        "first_within_days": 30,
    },
    "promise_max_days": 30,
    "promise_min_cents": 1000,
}
_n = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_n)}{uuid.uuid4().hex[:4]}"


@contextlib.asynccontextmanager
async def served(
    pool: asyncpg.Pool,
    *,
    clock: Callable[[], datetime] | None = None,
    extensions: Sequence[Callable[[web.Application], None]] = (),
    **settings: Any,
) -> AsyncIterator[TestClient]:
    app = create_app(pool, WebSettings(**settings), clock=clock, extensions=extensions)
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)
    client = TestClient(server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    token: str
    user_id: int
    agent_id: int | None = None
    agent_code: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def agent_row(pool: asyncpg.Pool, code: str | None = None) -> tuple[int, str]:
    code = code or unique("ag")
    agent_id = await pool.fetchval(
        "INSERT INTO agents (code, name, interface) VALUES ($1, $2, $3) RETURNING id",
        code,
        f"Agent {code}",
        f"PJSIP/{code}",
    )
    return agent_id, code


async def account(pool: asyncpg.Pool, role: str, *, agent: bool | None = None) -> Account:
    """A user with an API token; an agent user is linked to a new agents row."""
    name = unique(role)
    agent_id = agent_code = None
    if agent or (agent is None and role == "agent"):
        agent_id, agent_code = await agent_row(pool)
    user_id = await add_user(pool, name, PASSWORD, role, agent_code=agent_code)
    _, token = await new_token(pool, name, "tests")
    return Account(name, role, token, user_id, agent_id, agent_code)


@dataclass(frozen=True)
class Debtor:
    creditor: str
    creditor_id: int
    person_id: int
    debt_id: int
    phone_id: int
    e164: str
    balance_cents: int


async def debtor(
    pool: asyncpg.Pool, *, balance_cents: int = 150_000, policy: dict | None = None
) -> Debtor:
    n = next(_n)
    creditor = unique("cr")
    creditor_id = await pool.fetchval(
        "INSERT INTO creditors (code, name, public_name, callback_number, currency, policy)"
        " VALUES ($1, $1, 'Acme', '+525550001111', 'MXN', $2::jsonb) RETURNING id",
        creditor,
        json.dumps(POLICY if policy is None else policy),
    )
    person = await pool.fetchval(
        "INSERT INTO persons (full_name, country, region) VALUES ($1, 'MX', 'CMX') RETURNING id",
        f"Debtor {n}",
    )
    debt = await pool.fetchval(
        "INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)"
        " VALUES ($1, $2, $3, $4, 'MXN') RETURNING id",
        person,
        creditor_id,
        unique("acct"),
        balance_cents,
    )
    e164 = f"+5255{30000000 + n * 7919 % 9999999:08d}"
    phone = await pool.fetchval(
        "INSERT INTO phone_numbers (person_id, e164, kind) VALUES ($1, $2, 'mobile') RETURNING id",
        person,
        e164,
    )
    return Debtor(creditor, creditor_id, person, debt, phone, e164, balance_cents)


async def campaign_row(
    pool: asyncpg.Pool, creditor_id: int | None = None, *, state: str = "draft"
) -> tuple[int, str]:
    code = unique("camp")
    campaign_id = await pool.fetchval(
        "INSERT INTO campaigns (code, name, creditor_id, compliance_packs, state)"
        " VALUES ($1, $1, $2, '{mx}', $3) RETURNING id",
        code,
        creditor_id,
        state,
    )
    return campaign_id, code


async def attempt(
    pool: asyncpg.Pool,
    d: Debtor,
    campaign_id: int | None,
    *,
    agent_id: int | None = None,
    disposition: str | None = "agent",
    at: datetime | None = None,
) -> str:
    attempt_id = uuid.uuid4()
    at = at or datetime.now(UTC)
    await pool.execute(
        "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, phone_id, node, pbx,"
        " state, disposition, abandoned, agent_id, created_at, finalized_at)"
        " VALUES ($1, $2, $3, $4, $5, 'n1', 'sim', $6, $7, $11, $8, $9, $10)",
        attempt_id,
        campaign_id,
        d.person_id,
        d.debt_id,
        d.phone_id,
        "final" if disposition else "connected",
        disposition,
        agent_id,
        at,
        at if disposition else None,
        disposition == "abandoned",
    )
    return str(attempt_id)


async def audit_rows(pool: asyncpg.Pool, action: str, subject: str | None = None) -> list:
    return await pool.fetch(
        "SELECT actor, action, subject, details FROM audit_log"
        " WHERE action = $1 AND ($2::text IS NULL OR subject = $2) ORDER BY id",
        action,
        subject,
    )
