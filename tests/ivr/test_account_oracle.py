"""The IVR's identity check says nothing of whether an account exists: an unknown account is
asked what a known one would be, and fails as a known one does, lockout included (its own
module: the factor asked depends on every creditor in the database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from ivr import CollectionsActions
from ivr._actions import Call
from ivr.payments import SandboxGateway
from tests.ivr._seed import POLICY, debtor


async def _call(pool: asyncpg.Pool, creditor_id: int | None) -> Call:
    session = uuid.uuid4()
    await pool.execute(
        "INSERT INTO ivr_sessions (id, flow, language) VALUES ($1, 'collections', 'es')", session
    )
    data = {} if creditor_id is None else {"creditor_id": creditor_id}
    return Call(session, data, {}, "es", None, datetime.now(UTC))


async def _tries(
    actions: CollectionsActions, pool: asyncpg.Pool, creditor_id: int | None, account: str,
    factors: list[str],
) -> list[str]:  # fmt: skip
    call = await _call(pool, creditor_id)
    _, found = await actions.find_account({"account": account}, call)
    call.data.update(found)
    results = []
    for factor in factors:
        result, updates = await actions.verify_identity({"factor": factor}, call)
        call.data.update(updates)
        results.append(result)
    return results


async def test_without_a_known_creditor_an_unknown_account_is_asked_the_usual_factor(
    db_pool: asyncpg.Pool,
) -> None:
    by_postcode = {**POLICY, "second_factor": "postal_code"}
    async with db_pool.acquire() as conn:
        d = await debtor(conn, policy=by_postcode)
        await debtor(conn, policy=by_postcode)
    actions = CollectionsActions(db_pool, gateway=SandboxGateway())
    known = await _call(db_pool, None)
    _, asked_known = await actions.find_account({"account": d.account}, known)
    unknown = await _call(db_pool, None)
    _, asked_unknown = await actions.find_account({"account": "55555555"}, unknown)
    assert asked_known["second_factor"] == "postal_code"
    assert asked_unknown["second_factor"] == "postal_code"  # (it was "dob": an oracle)


async def test_a_lockout_sounds_like_an_unknown_account_until_the_right_factor(
    db_pool: asyncpg.Pool,
) -> None:
    one_try = {**POLICY, "max_verify_failures": 1}
    async with db_pool.acquire() as conn:
        d = await debtor(conn, policy=one_try)
    actions = CollectionsActions(db_pool, gateway=SandboxGateway())
    wrong = ["19990101", "19990102", "19990103"]
    known = await _tries(actions, db_pool, d.creditor_id, d.account, wrong)
    unknown = await _tries(actions, db_pool, d.creditor_id, "55555555", wrong)
    assert known == unknown == ["retry", "retry", "locked"]  # (the session's own limit)
    assert await db_pool.fetchval(
        "SELECT ivr_locked_until > now() FROM debts WHERE id = $1", d.debt_id
    )
    # Locked once, audited once, whatever the failures after it.
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'ivr.lockout' AND subject = $1",
            f"debt:{d.debt_id}",
        )
        == 1
    )
    # The lock is said after the right factor.
    assert await _tries(actions, db_pool, d.creditor_id, d.account, ["19800101"]) == ["locked"]
