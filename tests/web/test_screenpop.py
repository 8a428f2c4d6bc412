"""The screen pop: one query from the caller channel's Uniqueid to what the agent must see."""

from __future__ import annotations

import json
import uuid
from datetime import date

import asyncpg

from tests._plans import generic_plan, scans
from tests.ivr._seed import debtor
from web._agents import RIGHT_PARTY_CODES
from web._screenpop import _CALL, mask_account, screen_pop

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
            " entry, uniqueid, person_id, debt_id) VALUES ($1, $2, 'collections', 'es', true,"
            " 'transfer', $3::jsonb, 'abandon-save', $4, $5, $6)",
            uuid.uuid4(),
            attempt,
            json.dumps(
                [{"state": "safe_harbor", "event": "x"}, {"state": "to_agent", "event": "y"}]
            ),
            str(attempt),
            d.person_id,
            d.debt_id,
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
    assert pop["verify_first"] is None  # the IVR verified the caller


async def test_a_caller_the_ivr_verified_as_another_debtor_is_to_be_verified(
    db_pool: asyncpg.Pool,
) -> None:
    # A call to debtor A; whoever answered verified in the IVR with another account of the
    # creditor (B's): the pop shows A's debt, so the agent must verify, and is told why.
    async with db_pool.acquire() as conn:
        a = await debtor(conn)
        b = await debtor(conn)
        campaign = await conn.fetchval(
            "INSERT INTO campaigns (code, name, creditor_id) VALUES ('pop-b', 'B', $1)"
            " RETURNING id",
            a.creditor_id,
        )
        attempt = uuid.uuid4()
        await conn.execute(
            "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, phone_id, node, pbx,"
            " state) VALUES ($1, $2, $3, $4, $5, 'n', 'p', 'connected')",
            attempt,
            campaign,
            a.person_id,
            a.debt_id,
            a.phone_id,
        )
        await conn.execute(
            "INSERT INTO ivr_sessions (id, attempt_id, flow, language, verified, outcome,"
            " entry, uniqueid, person_id, debt_id) VALUES ($1, $2, 'collections', 'es', true,"
            " 'transfer', 'abandon-save', $3, $4, $5)",
            uuid.uuid4(),
            attempt,
            str(attempt),
            b.person_id,
            b.debt_id,
        )
    pop = await screen_pop(db_pool, str(attempt), TODAY)
    assert pop is not None
    assert pop["debt"]["id"] == a.debt_id
    assert pop["ivr"]["verified"] is False
    assert pop["ivr"]["verified_as_another_debtor"] is True
    assert pop["verify_first"] is not None
    assert pop["verify_first"].startswith("The caller verified in the IVR as another debtor")


async def test_an_unverified_caller_is_to_be_verified_before_the_account(
    db_pool: asyncpg.Pool,
) -> None:
    # Whoever answered may not be the debtor: the pop says so first, and for a US debtor
    # adds the debt-collector notice owed once it is them.
    for country, notice in (("MX", False), ("US", True)):
        async with db_pool.acquire() as conn:
            d = await debtor(conn, country=country)
            campaign = await conn.fetchval(
                "INSERT INTO campaigns (code, name, creditor_id) VALUES ($1, 'V', $2) RETURNING id",
                f"vf{d.creditor_id}",
                d.creditor_id,
            )
            attempt = uuid.uuid4()
            await conn.execute(
                "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, phone_id, node,"
                " pbx, state) VALUES ($1, $2, $3, $4, $5, 'n', 'p', 'connected')",
                attempt,
                campaign,
                d.person_id,
                d.debt_id,
                d.phone_id,
            )
        pop = await screen_pop(db_pool, str(attempt), TODAY)
        assert pop is not None
        said = pop["verify_first"]
        assert said.startswith(f"Verify you are speaking with {pop['debtor']['name']}")
        assert "before discussing the account" in said
        assert ("debt collector" in said) is notice


_AGENCY = {
    "name": "Gestiones Integrales del Centro SA de CV",
    "address": "Av. Reforma 100, Cuauhtémoc, 06600 CDMX",
    "phone": "+525555550199",
    "email": "contacto@gestiones.example",
    "responsible": "Laura Méndez, Jorge Ibarra",
}


async def test_a_mexican_debtors_first_contact_names_the_agency_until_a_right_party_contact(
    db_pool: asyncpg.Pool,
) -> None:
    async def call(d, state: str = "connected") -> uuid.UUID:
        attempt = uuid.uuid4()
        await db_pool.execute(
            "INSERT INTO call_attempts (id, person_id, debt_id, phone_id, node, pbx, state,"
            " disposition) VALUES ($1, $2, $3, $4, 'n', 'p', $5, $6)",
            attempt,
            d.person_id,
            d.debt_id,
            d.phone_id,
            state,
            "answered" if state == "final" else None,
        )
        return attempt

    async with db_pool.acquire() as conn:
        mx, us = await debtor(conn, country="MX"), await debtor(conn, country="US")
        in_house = await debtor(conn, country="MX")
    for d in (mx, us):
        await db_pool.execute(
            "UPDATE creditors SET agency = $2::jsonb WHERE id = $1", d.creditor_id,
            json.dumps(_AGENCY),
        )  # fmt: skip
    pop = await screen_pop(db_pool, str(await call(mx)), TODAY)
    said = pop["identify_first"]
    assert said.startswith("First contact (CONDUSEF): once the debtor is verified")
    creditor = await db_pool.fetchval("SELECT name FROM creditors WHERE id = $1", mx.creditor_id)
    for part in (*_AGENCY.values(), f"Collecting for {creditor}", pop["debt"]["account"]):
        assert part in said, part
    # Not for a US debtor (the FDCPA's notice is in verify_first), nor in-house collection.
    assert (await screen_pop(db_pool, str(await call(us)), TODAY))["identify_first"] is None
    pop = await screen_pop(db_pool, str(await call(in_house)), TODAY)
    assert pop["identify_first"] is None
    # An earlier call where the agent only reached a third party: still the first contact.
    earlier = await call(mx, "final")
    await db_pool.execute(
        "INSERT INTO dispositions (attempt_id, code, source) VALUES ($1, 'third_party', 'agent')",
        earlier,
    )
    assert (await screen_pop(db_pool, str(await call(mx)), TODAY))["identify_first"] == said
    reached = await call(mx, "final")
    await db_pool.execute(
        "INSERT INTO dispositions (attempt_id, code, source) VALUES ($1, 'promise_to_pay',"
        " 'agent')",
        reached,
    )
    assert (await screen_pop(db_pool, str(await call(mx)), TODAY))["identify_first"] is None


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


async def test_every_part_of_the_pop_is_read_by_an_index(db_pool: asyncpg.Pool) -> None:
    # 20,000 final attempts, IVR sessions and do-not-call entries of other debtors: enough for
    # the plans to matter. Checked on the generic plan a prepared statement may cache; each of
    # these parts was a sequential scan (~140 ms at production scale, on every call taken).
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
        await conn.execute(
            "INSERT INTO contact_blocks (kind, debt_id, person_id, source)"
            " VALUES ('cease', $1, $2, 'letter')",
            d.debt_id,
            d.person_id,
        )
        other = await debtor(conn)
        await conn.execute(
            """INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)
               SELECT $1, $2, 'bulk-pop-' || g, 100, 'MXN' FROM generate_series(1, 200) g""",
            other.person_id,
            other.creditor_id,
        )
        debts = await conn.fetchval(
            "SELECT array_agg(id) FROM debts WHERE account_ref LIKE 'bulk-pop-%'"
        )
        await conn.execute(
            """INSERT INTO call_attempts (id, person_id, debt_id, node, pbx, state, disposition,
                                          created_at)
               SELECT gen_random_uuid(), $1, ($2::bigint[])[1 + g % 200], 'n', 'p', 'final',
                      'no_answer', now() - g * interval '1 minute'
               FROM generate_series(1, 20000) g""",
            other.person_id,
            debts,
        )
        await conn.execute(
            """INSERT INTO ivr_sessions (id, attempt_id, flow, language, uniqueid, debt_id)
               SELECT gen_random_uuid(), NULL, 'collections', 'es', '1700000000.' || g, $1
               FROM generate_series(1, 20000) g""",
            other.debt_id,
        )
        await conn.execute(
            """INSERT INTO contact_blocks (kind, e164, source)
               SELECT 'dnc', '+5233' || lpad(g::text, 8, '0'), 'registry'
               FROM generate_series(1, 20000) g"""
        )
        for _ in range(3):
            await conn.execute(
                "INSERT INTO call_attempts (id, person_id, debt_id, phone_id, node, pbx, state,"
                " disposition) VALUES ($1, $2, $3, $4, 'n', 'p', 'final', 'busy')",
                uuid.uuid4(),
                d.person_id,
                d.debt_id,
                d.phone_id,
            )
        attempt = uuid.uuid4()
        await conn.execute(
            "INSERT INTO call_attempts (id, person_id, debt_id, phone_id, node, pbx, state)"
            " VALUES ($1, $2, $3, $4, 'n', 'p', 'connected')",
            attempt,
            d.person_id,
            d.debt_id,
            d.phone_id,
        )
        await conn.execute(
            "INSERT INTO ivr_sessions (id, flow, language, uniqueid, person_id, debt_id)"
            " VALUES ($1, 'collections', 'es', '1795335999.1', $2, $3)",
            uuid.uuid4(),
            d.person_id,
            d.debt_id,
        )
        await conn.execute("ANALYZE call_attempts, ivr_sessions, contact_blocks")
    pop = await screen_pop(db_pool, str(attempt), TODAY)
    assert pop is not None
    assert len(pop["attempts"]) == 3
    assert pop["compliance_notes"] == ["cease requested for all channels"]
    big = {"call_attempts", "ivr_sessions", "contact_blocks"}
    nobody = "00000000-0000-0000-0000-000000000000"
    for key, uniqueid in ((str(attempt), str(attempt)), (nobody, "1795335999.1")):  # out, in
        plan = await generic_plan(db_pool, _CALL, "text, text, text[]", key, uniqueid,
                                  list(RIGHT_PARTY_CODES))  # fmt: skip
        assert plan["Plan"]["Actual Rows"] == 1
        nodes = scans(plan["Plan"])
        assert not [s for s in nodes if s[0] == "Seq Scan" and s[1] in big], nodes
        used = {s[2] for s in nodes}
        assert {"call_attempts_debt_final_idx", "ivr_sessions_uniqueid_idx",
                "contact_blocks_debt_idx", "contact_blocks_e164_idx"} <= used, nodes  # fmt: skip
        assert sum(s[3] for s in nodes if s[1] in big or s[2]) <= 20, nodes
