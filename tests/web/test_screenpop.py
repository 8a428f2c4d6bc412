"""The screen pop: one query from the caller channel's Uniqueid to what the agent must see."""

from __future__ import annotations

import json
import uuid
from datetime import date

import asyncpg

from tests.ivr._seed import debtor
from web._screenpop import mask_account, screen_pop

TODAY = date(2026, 11, 26)


async def test_outbound_call_with_ivr_context_promises_and_notes(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
        campaign = await conn.fetchval(
            "INSERT INTO campaigns (code, name, creditor_id) VALUES ('pop', 'Pop', $1)"
            " RETURNING id",
            d.creditor_id,
        )
        attempt = uuid.uuid4()
        await conn.execute(
            "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, phone_id, node, pbx,"
            " state) VALUES ($1, $2, $3, $4, $5, 'n', 'p', 'connected')",
            attempt,
            campaign,
            d.person_id,
            d.debt_id,
            d.phone_id,
        )
        await conn.execute(
            "INSERT INTO ivr_sessions (id, attempt_id, flow, language, verified, outcome, trail,"
            " entry, uniqueid) VALUES ($1, $2, 'collections', 'es', true, 'transfer', $3::jsonb,"
            " 'abandon-save', $4)",
            uuid.uuid4(),
            attempt,
            json.dumps(
                [{"state": "safe_harbor", "event": "x"}, {"state": "to_agent", "event": "y"}]
            ),
            str(attempt),
        )
        await conn.execute(
            "INSERT INTO contact_blocks (kind, person_id, channel, source, reason)"
            " VALUES ('cease', $1, 'email', 'letter', 'asked in writing')",
            d.person_id,
        )
        await conn.execute(
            "INSERT INTO promises (debt_id, source, plan, total_cents, confirmation_code, status)"
            " VALUES ($1, 'ivr', '[]', 5000, '99999997', 'broken')",
            d.debt_id,
        )
    pop = await screen_pop(db_pool, str(attempt), TODAY)
    assert pop is not None
    assert pop["attempt_id"] == str(attempt)
    assert pop["campaign"] == "pop"
    assert pop["debt"]["account"] == mask_account(d.account)
    assert d.account not in json.dumps(pop)
    assert d.number not in json.dumps(pop)
    assert pop["debt"]["balance_cents"] == 150000
    assert pop["debt"]["currency"] == "MXN"
    assert [o["kind"] for o in pop["options"]][:2] == ["full", "settlement"]
    assert pop["options"][0]["total_cents"] == 135000
    assert pop["ivr"]["verified"]
    assert pop["ivr"]["states"] == ["safe_harbor", "to_agent"]
    assert pop["compliance_notes"] == ["cease requested for email (asked in writing)"]
    assert pop["promises"][0]["status"] == "broken"


async def test_inbound_transfer_is_found_by_its_uniqueid(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
        await conn.execute(
            "INSERT INTO ivr_sessions (id, flow, language, verified, outcome, entry, uniqueid,"
            " person_id, debt_id) VALUES ($1, 'collections', 'en', true, 'transfer', 'inbound',"
            " '1795335254.77', $2, $3)",
            uuid.uuid4(),
            d.person_id,
            d.debt_id,
        )
    pop = await screen_pop(db_pool, "1795335254.77", TODAY)
    assert pop is not None
    assert pop["attempt_id"] is None
    assert pop["ivr"]["entry"] == "inbound"
    assert pop["debt"]["id"] == d.debt_id
    assert await screen_pop(db_pool, "1795335254.78", TODAY) is None


def test_mask_account() -> None:
    assert mask_account("77000001") == "****0001"
    assert mask_account("123") == "123"
