"""Card payment in the IVR: check the card, write the intent, charge once, record the result.

The card digits come from ``call.secrets`` (the caller's keys, never in the flow's data) and go
to the gateway only. The payment row is written ``pending`` under its idempotency key before the
charge, so a crash between the two is found; a retry of the same step in the same session uses
the same key and the gateway charges once, and its result is recorded and applied once. Only the
token, brand and last four are stored.

``pending`` is also what a charge whose answer never came stays: the gateway may have taken the
money, so it is neither failed nor paid, and the caller is not told either. While a payment on a
debt is pending no other charge on it is sent (another card, another amount, another call): the
caller hears so and reaches an agent. The intent is written under the debt's lock
(:func:`ivr._promises.lock_debt`), so two calls paying one debt at once charge it once, and a
call whose offer was built on a balance another call has changed since is told so, uncharged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets as _random
from typing import TYPE_CHECKING, Any

import asyncpg

from db.audit import audit
from ivr import plans
from ivr._exceptions import CardError, GatewayUnavailable
from ivr._promises import CODE_DRAWS, insert_promise, lock_debt
from ivr.payments import (
    ChargeRequest,
    ChargeResult,
    PaymentGateway,
    check_card,
    check_cvv,
    idempotency_key,
    parse_expiry,
)

if TYPE_CHECKING:
    import uuid

    from ivr._actions import Call

log = logging.getLogger(__name__)


async def charge(
    pool: asyncpg.Pool,
    gateway: PaymentGateway,
    timeout_s: float,
    call: Call,
    row: asyncpg.Record,
) -> tuple[str, dict]:
    """Check the card, write the intent, charge once, record the result (one transaction)."""
    offer = call.data.get("offer")
    if not isinstance(offer, dict):
        return "invalid_card", {}
    amount = int(offer["instalments"][0]["amount_cents"])
    today = call.now.date()
    try:
        card = check_card(call.secrets.get("card", ""))
        expiry = parse_expiry(call.secrets.get("expiry", ""), today)
        cvv = check_cvv(call.secrets.get("cvv", ""), card.brand)
    except CardError as e:
        log.info("ivr %s: card refused before the gateway: %s", call.session_id, e.reason)
        return "invalid_card", {}
    tries = int(call.data.get("payment_tries", 0))
    key = idempotency_key(str(call.session_id), row["id"], amount, tries)
    request = ChargeRequest(key, amount, row["currency"], card, expiry, cvv)
    async with pool.acquire() as conn, conn.transaction():
        refused = await _intend(conn, call, row, offer, key, amount, gateway.name)
    if refused is not None:
        return refused
    try:
        async with asyncio.timeout(timeout_s):
            result = await gateway.charge(request)
    except GatewayUnavailable:  # the gateway says it charged nothing
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE payments SET status = 'error', updated_at = now()"
                " WHERE idempotency_key = $1 AND status = 'pending'",
                key,
            )
        call.writes.append("payments: error (gateway unavailable)")
        return "unavailable", {}  # same key next time: never charged twice
    except TimeoutError:
        # No answer in time: the money may have been taken. Unknown: the row stays pending
        # (for reconciliation with the gateway, by its key); nothing is charged on this debt
        # until it is settled, and the caller is told neither "paid" nor "not charged".
        log.warning(
            "ivr %s: no answer from the gateway in %.1f s (key %s): payment outcome unknown",
            call.session_id,
            timeout_s,
            key[:12],
        )
        call.writes.append("payments: pending (no answer from the gateway: outcome unknown)")
        return "unknown", {}
    return await _record(pool, call, row, offer, key, amount, result, tries)


async def _intend(
    conn: asyncpg.Connection,
    call: Call,
    row: asyncpg.Record,
    offer: dict,
    key: str,
    amount: int,
    gateway: str,
) -> tuple[str, dict] | None:
    """Under the debt's lock: write the pending row and return None (charge it), or say why
    not. A step whose result is recorded already is answered from its row (no charge)."""
    now = await lock_debt(conn, row["id"], except_key=key)
    earlier = await _recorded_answer(conn, key, int(call.data.get("payment_tries", 0)))
    if earlier is not None:
        return earlier
    if now.payment_unknown:
        log.warning("ivr %s: a payment on debt %s is pending; no new charge", call.session_id,
                    row["id"])  # fmt: skip
        return "unknown", {}
    if now.changed_since(row):
        return "changed", {}
    if len(offer["instalments"]) > 1 and now.active_promise_code is not None:
        # A plan leaves a promise for the rest; the debt has one already.
        return "exists", {"confirmation": now.active_promise_code}
    # Intent first: a crash after the charge finds the pending row by its key.
    # (with the offer: a payment settled later, its answer lost, is applied as the caller chose)
    # A key whose last try found the gateway down ('error': nothing charged) is pending again:
    # this try may charge, and an answer lost now must leave it unknown, which blocks other
    # charges on the debt and is settled with the gateway, not an 'error' nobody looks at.
    await conn.execute(
        "INSERT INTO payments (debt_id, idempotency_key, amount_cents, currency, status,"
        " gateway, ivr_session_id, offer) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7::jsonb)"
        " ON CONFLICT (idempotency_key) DO UPDATE SET status = 'pending', updated_at = now()"
        " WHERE payments.status = 'error'",
        row["id"],
        key,
        amount,
        row["currency"],
        gateway,
        call.session_id,
        json.dumps({"kind": offer["kind"], "instalments": offer["instalments"]}),
    )
    return None


async def _recorded_answer(
    conn: asyncpg.Connection, key: str, tries: int
) -> tuple[str, dict] | None:
    """The caller's answer from the payment ``key`` when its result is recorded already
    (approved or declined: an earlier try of this step); None while it is not."""
    earlier = await conn.fetchrow(
        "SELECT status, confirmation_code FROM payments WHERE idempotency_key = $1", key
    )
    if earlier is None or earlier["status"] not in ("approved", "declined"):
        return None
    return _answer(earlier["status"], earlier["confirmation_code"], tries)


def _answer(status: str, code: str | None, tries: int) -> tuple[str, dict]:
    updates: dict[str, Any] = {"payment_tries": tries + 1}
    if status != "approved":
        return "declined", updates
    updates["confirmation"] = code
    return "approved", updates


async def _record(
    pool: asyncpg.Pool,
    call: Call,
    row: asyncpg.Record,
    offer: dict,
    key: str,
    amount: int,
    result: ChargeResult,
    tries: int,
) -> tuple[str, dict]:
    """The gateway's answer and, when approved, its effect on the debt: one transaction, once
    per key (a row no longer pending or failed was recorded by an earlier try of this step)."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_debt(conn, row["id"], except_key=key)
        code = await _store_result(conn, key, result)
        if code is _RECORDED:  # recorded (and applied) before: answer from the row
            earlier = await _recorded_answer(conn, key, tries)
            assert earlier is not None  # (not pending nor error: approved or declined)
            return earlier
        if result.approved:
            await _apply_payment(conn, row["id"], call.attempt_id, call.session_id, offer, amount)
    call.writes.append(f"payments: {result.status} {amount} {row['currency']}")
    return _answer(result.status, code, tries)


_RECORDED = "recorded before"


async def _store_result(conn: asyncpg.Connection, key: str, result: ChargeResult) -> str | None:
    """Write the gateway's answer on the payment ``key`` if it is still open (pending, or
    error); its new confirmation code (None: declined), or ``_RECORDED`` when it was not open."""
    for _ in range(CODE_DRAWS):
        code = plans.confirmation_code(_random.randbelow(10**7)) if result.approved else None
        try:
            async with conn.transaction():  # a savepoint: a code already taken
                recorded = await conn.fetchval(
                    "UPDATE payments SET status = $2, gateway_ref = $3, card_token = $4,"
                    " card_brand = $5, card_last4 = $6, decline_reason = $7,"
                    " confirmation_code = $8, updated_at = now()"
                    " WHERE idempotency_key = $1 AND status IN ('pending', 'error')"
                    " RETURNING id",
                    key,
                    result.status,
                    result.gateway_ref,
                    result.token,
                    result.brand,
                    result.last4,
                    result.decline_reason,
                    code,
                )
        except asyncpg.UniqueViolationError:
            continue
        return code if recorded is not None else _RECORDED
    raise RuntimeError(f"no free confirmation code after {CODE_DRAWS} draws")


async def _apply_payment(
    conn: asyncpg.Connection,
    debt_id: int,
    attempt_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    offer: dict,
    paid: int,
) -> None:
    if offer["kind"] in ("full", "settlement", "custom") and len(offer["instalments"]) == 1:
        if offer["kind"] == "custom":
            await conn.execute(
                "UPDATE debts SET balance_cents = greatest(balance_cents - $2, 0) WHERE id = $1",
                debt_id,
                paid,
            )
        else:  # paid as agreed: the rest is forgiven
            await conn.execute(
                "UPDATE debts SET balance_cents = 0, status = 'paid' WHERE id = $1", debt_id
            )
        return
    # A plan: the first instalment is paid now; the rest is a promise.
    rest = offer["instalments"][1:]
    await conn.execute(
        "UPDATE debts SET balance_cents = greatest(balance_cents - $2, 0) WHERE id = $1",
        debt_id,
        paid,
    )
    if rest and (
        active := await conn.fetchval(
            "SELECT confirmation_code FROM promises WHERE debt_id = $1 AND status = 'active'",
            debt_id,
        )
    ):
        # (a payment settled late, its plan's promise now second to one made meanwhile:
        # one active promise a debt; the plan's rest is left to whoever reviews it)
        log.warning(
            "payment on debt %s: the plan's remaining promise not written: the debt has an "
            "active promise already; review it (audit_log payment.plan_promise_skipped)",
            debt_id,
        )
        await audit(
            conn, "ivr", "payment.plan_promise_skipped", f"debt:{debt_id}",
            {"instalments": rest, "active_promise": active},
        )  # fmt: skip
    elif rest:
        await insert_promise(
            conn,
            debt_id=debt_id,
            attempt_id=attempt_id,
            session_id=session_id,
            kind="plan",
            instalments=rest,
            total_cents=sum(int(i["amount_cents"]) for i in rest),
        )


#: A pending payment younger than this may still have its charge on the way: left alone.
SETTLE_AFTER_S = 600.0
_PENDING = """
SELECT p.id, p.idempotency_key, p.debt_id, p.amount_cents, p.offer, p.ivr_session_id,
       s.attempt_id
FROM payments p LEFT JOIN ivr_sessions s ON s.id = p.ivr_session_id
WHERE p.status = 'pending' AND p.updated_at < now() - make_interval(secs => $1)
ORDER BY p.updated_at LIMIT $2
"""


async def settle_pending(
    pool: asyncpg.Pool,
    gateway: PaymentGateway,
    *,
    timeout_s: float,
    older_than_s: float | None = None,  # None: SETTLE_AFTER_S
    limit: int = 100,
) -> dict[str, int]:
    """Settle the payments whose answer never came, by asking the gateway under each one's key.

    A charge the gateway made is recorded and applied as the caller chose (the offer kept with
    the payment); one it never made is ``error`` (nothing was charged: the debt takes card
    payments again); one the gateway cannot say about yet stays pending for the next round.
    Counts by what happened: ``approved``, ``declined``, ``not_charged``, ``unknown``."""
    counts = {"approved": 0, "declined": 0, "not_charged": 0, "unknown": 0}
    age = SETTLE_AFTER_S if older_than_s is None else older_than_s
    for p in await pool.fetch(_PENDING, age, limit):
        key = p["idempotency_key"]
        try:
            async with asyncio.timeout(timeout_s):
                result = await gateway.lookup(key)
        except (GatewayUnavailable, TimeoutError) as e:
            counts["unknown"] += 1
            log.warning("ivr: payment %s (key %s) still unknown: %s", p["id"], key[:12], e)
            continue
        async with pool.acquire() as conn, conn.transaction():
            await lock_debt(conn, p["debt_id"], except_key=key)
            if result is None:
                done = await conn.fetchval(
                    "UPDATE payments SET status = 'error', decline_reason = 'not_charged',"
                    " updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING id",
                    p["id"],
                )
                outcome = "not_charged"
            else:
                code = await _store_result(conn, key, result)
                done = code is not _RECORDED
                if done and result.approved and p["offer"] is None:  # (from before 0020)
                    log.warning(
                        "ivr: payment %s approved, recorded, NOT applied to debt %s: the "
                        "caller's offer was not kept; review it", p["id"], p["debt_id"],
                    )  # fmt: skip
                elif done and result.approved:
                    await _apply_payment(
                        conn, p["debt_id"], p["attempt_id"], p["ivr_session_id"],
                        json.loads(p["offer"]), p["amount_cents"],
                    )  # fmt: skip
                outcome = result.status
        if done:
            counts[outcome] += 1
            log.info("ivr: payment %s settled with the gateway: %s", p["id"], outcome)
    return counts
