"""Payments whose answer never came (the gateway did not answer in time) are settled later by
asking the gateway under their idempotency key: applied as the caller chose when it charged,
released when it never did, left pending while it cannot say."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from ivr import CollectionsActions
from ivr._actions import Call
from ivr._charge import settle_pending
from ivr.payments import SandboxGateway
from tests.ivr._seed import debtor

CARD = "4242424242424242"


async def _call(pool: asyncpg.Pool, debt_id: int, number: str) -> Call:
    session_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO ivr_sessions (id, flow, language) VALUES ($1, 'collections', 'es')",
        session_id,
    )
    return Call(session_id, {"verified": True, "debt_id": debt_id}, {}, "es", number,
                datetime.now(UTC))  # fmt: skip


async def _pay(actions: CollectionsActions, call: Call, offer: dict[str, str]) -> str:
    _, chosen = await actions.choose_offer(offer, call)
    call.data.update(chosen)
    call.secrets.update(card=CARD, expiry="1230", cvv="123")
    call.debt = None
    result, _ = await actions.charge_card({}, call)
    return result


async def _timed_out(pool: asyncpg.Pool, offer: dict[str, str], balance: int = 100000):
    """A debt, and a card payment on it whose answer did not come in time (it was charged)."""
    async with pool.acquire() as conn:
        d = await debtor(conn, balance_cents=balance)
    gateway = SandboxGateway(delay_s=0.5)  # decided at once, the answer lost in transit
    actions = CollectionsActions(pool, gateway=gateway)
    actions.gateway_timeout_s = 0.1
    call = await _call(pool, d.debt_id, d.number)
    assert await _pay(actions, call, offer) == "unknown"
    gateway.delay_s = 0.0
    return d, gateway, actions


async def _payments(pool: asyncpg.Pool, debt_id: int) -> list[tuple[str, bool]]:
    rows = await pool.fetch(
        "SELECT status, confirmation_code IS NOT NULL AS coded FROM payments"
        " WHERE debt_id = $1 ORDER BY id",
        debt_id,
    )
    return [(r["status"], r["coded"]) for r in rows]


async def test_a_charge_made_is_recorded_and_applied_as_the_caller_chose(db_pool) -> None:
    d, gateway, _ = await _timed_out(db_pool, {"kind": "plan", "months": "3"})
    assert await _payments(db_pool, d.debt_id) == [("pending", False)]
    counts = await settle_pending(db_pool, gateway, timeout_s=1.0, older_than_s=0.0)
    assert counts == {"approved": 1, "declined": 0, "not_charged": 0, "unknown": 0}
    assert gateway.charges == 1  # asked, never charged again
    assert await _payments(db_pool, d.debt_id) == [("approved", True)]
    balance = await db_pool.fetchval("SELECT balance_cents FROM debts WHERE id = $1", d.debt_id)
    assert balance == 100000 - 33333  # the plan's first instalment
    promise = await db_pool.fetchrow(
        "SELECT kind, total_cents FROM promises WHERE debt_id = $1 AND status = 'active'",
        d.debt_id,
    )
    assert (promise["kind"], promise["total_cents"]) == ("plan", 100000 - 33333)
    # Settled once: another round finds nothing to do.
    again = await settle_pending(db_pool, gateway, timeout_s=1.0, older_than_s=0.0)
    assert sum(again.values()) == 0
    assert (
        await db_pool.fetchval("SELECT count(*) FROM promises WHERE debt_id = $1", d.debt_id) == 1
    )


async def test_a_charge_never_made_releases_the_debt_for_card_payments(db_pool) -> None:
    # The intent was written and the process died before the charge left (or the gateway lost
    # it): the gateway knows no charge under the key.
    d, _, actions = await _timed_out(db_pool, {"kind": "full"})
    other = SandboxGateway()  # knows nothing of the first charge
    counts = await settle_pending(db_pool, other, timeout_s=1.0, older_than_s=0.0)
    assert counts["not_charged"] == 1
    assert await _payments(db_pool, d.debt_id) == [("error", False)]
    assert await db_pool.fetchval("SELECT balance_cents FROM debts WHERE id = $1", d.debt_id) == (
        100000
    )
    # The debt takes a card payment again (it was refused while the first was unknown).
    actions.gateway = other
    call = await _call(db_pool, d.debt_id, d.number)
    assert await _pay(actions, call, {"kind": "full"}) == "approved"


@pytest.mark.parametrize("fault", ["down", "young"])
async def test_a_payment_nobody_can_settle_yet_stays_pending(db_pool, fault: str) -> None:
    d, gateway, _ = await _timed_out(db_pool, {"kind": "full"})
    if fault == "down":
        gateway.down = True
        counts = await settle_pending(db_pool, gateway, timeout_s=1.0, older_than_s=0.0)
        assert counts["unknown"] == 1
    else:  # its charge may still be on the way: not asked about yet
        counts = await settle_pending(db_pool, gateway, timeout_s=1.0)
        assert sum(counts.values()) == 0
    assert await _payments(db_pool, d.debt_id) == [("pending", False)]
    assert await db_pool.fetchval("SELECT balance_cents FROM debts WHERE id = $1", d.debt_id) == (
        100000
    )


async def test_the_service_settles_them_on_its_own_and_goes_on_after_a_fault(
    db_pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from ivr import ACTIONS, Catalog, IvrService
    from ivr import _charge as charge_module
    from ivr._flow import load_flows

    d, _, actions = await _timed_out(db_pool, {"kind": "full"})
    monkeypatch.setattr(charge_module, "SETTLE_AFTER_S", 0.0)
    # A database fault, then a gateway's own error: neither ends the task (it runs in the
    # service's TaskGroup, where an exception stops every server).
    real = charge_module.settle_pending
    faults: list[Exception] = [
        RuntimeError("the gateway's client library (test)"),
        ConnectionResetError("the database (test)"),
    ]

    async def flaky(*args, **kwargs):
        if faults:
            raise faults.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr("ivr._runtime.settle_pending", flaky)
    catalog = Catalog.load()
    service = IvrService(db_pool, load_flows(None, catalog, ACTIONS), catalog, actions, node="t")
    task = asyncio.get_running_loop().create_task(service.settle_payments(every_s=0.05))
    try:
        async with asyncio.timeout(5):
            while await _payments(db_pool, d.debt_id) == [("pending", False)]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert not faults  # it failed twice, and went on
    assert await _payments(db_pool, d.debt_id) == [("approved", True)]


async def test_a_retry_after_the_gateway_was_down_whose_answer_is_lost_stays_unknown(
    db_pool,
) -> None:
    """The same step tried again (same key) after the gateway said it was down: if this try's
    answer is lost, the payment is unknown (pending), settled with the gateway, and no other
    call charges the debt meanwhile; it was left 'error' and another card was charged."""
    async with db_pool.acquire() as conn:
        d = await debtor(conn, balance_cents=100000)
    gateway = SandboxGateway()
    actions = CollectionsActions(db_pool, gateway=gateway)
    actions.gateway_timeout_s = 0.1
    call = await _call(db_pool, d.debt_id, d.number)
    gateway.down = True
    assert await _pay(actions, call, {"kind": "full"}) == "unavailable"
    assert await _payments(db_pool, d.debt_id) == [("error", False)]
    gateway.down, gateway.delay_s = False, 0.5  # charged this time, the answer lost
    assert await _pay(actions, call, {"kind": "full"}) == "unknown"
    assert await _payments(db_pool, d.debt_id) == [("pending", False)]
    gateway.delay_s = 0.0
    other = await _call(db_pool, d.debt_id, d.number)
    assert await _pay(actions, other, {"kind": "full"}) == "unknown"  # not charged again
    assert gateway.charges == 1
    counts = await settle_pending(db_pool, gateway, timeout_s=1.0, older_than_s=0.0)
    assert counts["approved"] == 1
    assert await _payments(db_pool, d.debt_id) == [("approved", True)]
    assert await db_pool.fetchval("SELECT status FROM debts WHERE id = $1", d.debt_id) == "paid"


async def test_a_plan_settled_late_makes_no_second_active_promise(db_pool) -> None:
    """A plan's first instalment charged, its answer lost; meanwhile the debt got an active
    promise (made before the agents' API refused them on a pending payment): settling the
    payment applies it but leaves the plan's rest to a review, one active promise a debt."""
    d, gateway, _ = await _timed_out(db_pool, {"kind": "plan", "months": "3"})
    await db_pool.execute(
        "INSERT INTO promises (debt_id, source, plan, total_cents, confirmation_code, kind,"
        " first_due, last_due) VALUES ($1, 'agent', '[]', 1000, '12345674', 'custom',"
        " current_date + 7, current_date + 7)",
        d.debt_id,
    )
    counts = await settle_pending(db_pool, gateway, timeout_s=1.0, older_than_s=0.0)
    assert counts["approved"] == 1
    active = await db_pool.fetch(
        "SELECT source FROM promises WHERE debt_id = $1 AND status = 'active'", d.debt_id
    )
    assert [r["source"] for r in active] == ["agent"]
    balance = await db_pool.fetchval("SELECT balance_cents FROM debts WHERE id = $1", d.debt_id)
    assert balance == 100000 - 33333  # the instalment paid is applied all the same
    assert await db_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'payment.plan_promise_skipped'"
        " AND subject = $1",
        f"debt:{d.debt_id}",
    )
