"""Card payment in the IVR: check the card, write the intent, charge once, record the result.

The card digits come from ``call.secrets`` (the caller's keys, never in the flow's data) and go
to the gateway only. The payment row is written ``pending`` under its idempotency key before the
charge, so a crash between the two is found; a retry of the same step in the same session uses
the same key and the gateway charges once. Only the token, brand and last four are stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets as _random
from datetime import date
from typing import TYPE_CHECKING, Any

import asyncpg

from ivr import plans
from ivr._exceptions import CardError, GatewayUnavailable
from ivr.payments import (
    ChargeRequest,
    PaymentGateway,
    check_card,
    check_cvv,
    idempotency_key,
    parse_expiry,
)

if TYPE_CHECKING:
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
    async with pool.acquire() as conn:
        # Intent first: a crash after the charge finds the pending row by its key.
        await conn.execute(
            "INSERT INTO payments (debt_id, idempotency_key, amount_cents, currency, status,"
            " gateway, ivr_session_id) VALUES ($1, $2, $3, $4, 'pending', $5, $6)"
            " ON CONFLICT (idempotency_key) DO NOTHING",
            row["id"],
            key,
            amount,
            row["currency"],
            gateway.name,
            call.session_id,
        )
    try:
        async with asyncio.timeout(timeout_s):
            result = await gateway.charge(request)
    except (GatewayUnavailable, TimeoutError):
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE payments SET status = 'error', updated_at = now()"
                " WHERE idempotency_key = $1 AND status = 'pending'",
                key,
            )
        call.writes.append("payments: error (gateway unavailable)")
        return "unavailable", {}  # same key next time: never charged twice
    code = plans.confirmation_code(_random.randbelow(10**7)) if result.approved else None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE payments SET status = $2, gateway_ref = $3, card_token = $4,"
            " card_brand = $5, card_last4 = $6, decline_reason = $7,"
            " confirmation_code = $8, updated_at = now() WHERE idempotency_key = $1",
            key,
            result.status,
            result.gateway_ref,
            result.token,
            result.brand,
            result.last4,
            result.decline_reason,
            code,
        )
        if result.approved:
            await _apply_payment(conn, call, row, offer, amount)
    call.writes.append(f"payments: {result.status} {amount} {row['currency']}")
    updates: dict[str, Any] = {"payment_tries": tries + 1}
    if not result.approved:
        return "declined", updates
    updates["confirmation"] = code
    return "approved", updates


async def _apply_payment(
    conn: asyncpg.Connection, call: Call, row: asyncpg.Record, offer: dict, paid: int
) -> None:
    if offer["kind"] in ("full", "settlement", "custom") and len(offer["instalments"]) == 1:
        if offer["kind"] == "custom":
            await conn.execute(
                "UPDATE debts SET balance_cents = greatest(balance_cents - $2, 0) WHERE id = $1",
                row["id"],
                paid,
            )
        else:  # paid as agreed: the rest is forgiven
            await conn.execute(
                "UPDATE debts SET balance_cents = 0, status = 'paid' WHERE id = $1", row["id"]
            )
        return
    # A plan: the first instalment is paid now; the rest is a promise.
    rest = offer["instalments"][1:]
    await conn.execute(
        "UPDATE debts SET balance_cents = greatest(balance_cents - $2, 0) WHERE id = $1",
        row["id"],
        paid,
    )
    if rest:
        await conn.execute(
            "INSERT INTO promises (debt_id, attempt_id, source, plan, total_cents,"
            " confirmation_code, ivr_session_id, kind, first_due, last_due)"
            " VALUES ($1, $2, 'ivr', $3::jsonb, $4, $5, $6, 'plan', $7, $8)",
            row["id"],
            call.attempt_id,
            json.dumps(rest),
            sum(int(i["amount_cents"]) for i in rest),
            plans.confirmation_code(_random.randbelow(10**7)),
            call.session_id,
            date.fromisoformat(rest[0]["due"]),
            date.fromisoformat(rest[-1]["due"]),
        )
        await conn.execute(
            "UPDATE debts SET status = 'promised' WHERE id = $1 AND status = 'open'", row["id"]
        )
