"""Promises to pay, recorded by agents or through the API, under the creditor's policy.

The checks are the IVR's own (:mod:`ivr.plans`): a single promise must pass
:func:`ivr.plans.check_promise` (amount between the policy's minimum and the balance, date
within ``promise_max_days``), a plan is built by :func:`ivr.plans.instalment_plan` (months,
minimum instalment, first date, business days). "Today" is the debtor's local date when their
zone is known (``person_zones``), else UTC's. A refusal is a 422 saying why and naming the
field. One active promise per debt (409 for a second); the debt becomes ``promised``.

An agent records promises only on its own calls (``attempt_id``) and lists only the promises
of debts it has called.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from ivr import PlanError, PolicyError
from ivr import plans as ivr_plans
from web._api import ApiCall, ApiRoute
from web._audit import audit
from web._exceptions import Conflict, Forbidden, Invalid
from web._schema import DATE, ID, UUID
from web._values import jsonb, object_schema, parse_date

log = logging.getLogger(__name__)

_BODY = object_schema(
    {
        "debt_id": ID,
        "attempt_id": UUID,
        "amount_cents": {"type": "integer", "minimum": 1, "maximum": 10**13},
        "due": DATE,
        "plan": object_schema(
            {"months": {"type": "integer", "minimum": 1, "maximum": 120}, "first_due": DATE},
            ("months",),
        ),
    },
    ("debt_id",),
)
# What a PlanError's message is about -> the field to name.
_PLAN_FIELDS = (
    ("a promise must be between", "amount_cents"),
    ("a promise date", "due"),
    ("nothing to arrange", "debt_id"),
    ("this creditor does not offer", "plan"),
    ("a plan must run", "plan.months"),
    ("each instalment", "plan.months"),
    ("the first payment", "plan.first_due"),
    ("holidays leave", "plan.first_due"),
)
_DEBT = """
SELECT d.id, d.person_id, d.balance_cents, d.currency, d.status, cr.code AS creditor,
       cr.policy, z.zone
FROM debts d JOIN creditors cr ON cr.id = d.creditor_id
LEFT JOIN person_zones z ON z.person_id = d.person_id
WHERE d.id = $1
FOR UPDATE OF d
"""
_COLUMNS = """p.id, p.debt_id, p.attempt_id, p.source, p.kind, p.plan, p.total_cents,
    p.confirmation_code, p.status, p.first_due, p.last_due, p.created_at"""
_INSERT = f"""
INSERT INTO promises AS p (debt_id, attempt_id, source, plan, total_cents, confirmation_code,
                           kind, first_due, last_due)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9)
RETURNING {_COLUMNS}
"""


def _field(message: str) -> str:
    return next((f for prefix, f in _PLAN_FIELDS if message.startswith(prefix)), "body")


def promise_json(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out["plan"] = jsonb(row["plan"])
    out["attempt_id"] = str(row["attempt_id"]) if row["attempt_id"] else None
    return out


def _today(call: ApiCall, zone_name: str | None) -> date:
    now = call.now()
    try:
        return now.astimezone(ZoneInfo(zone_name)).date() if zone_name else now.date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.date()


def arrangement(
    body: dict[str, Any], balance_cents: int, policy: ivr_plans.CreditorPolicy, today: date
) -> tuple[str, list[dict[str, Any]], int]:
    """``(kind, instalments, total)`` of what the body asks for, checked against the policy
    (pure); :class:`Invalid` naming the field when it is not allowed."""
    single = "amount_cents" in body or "due" in body
    if single == ("plan" in body):
        raise Invalid("body: give amount_cents and due, or a plan (not both)", "amount_cents")
    try:
        if single:
            if "amount_cents" not in body or "due" not in body:
                missing = "due" if "due" not in body else "amount_cents"
                raise Invalid(f"{missing}: required with a single promise", missing)
            due = parse_date(body["due"])
            ivr_plans.check_promise(body["amount_cents"], due, balance_cents, policy, today)
            amount = body["amount_cents"]
            return "custom", [{"due": due.isoformat(), "amount_cents": amount}], amount
        plan = body["plan"]
        first = parse_date(plan["first_due"]) if "first_due" in plan else None
        offer = ivr_plans.instalment_plan(balance_cents, plan["months"], policy, today, first)
    except PlanError as e:
        raise Invalid(str(e), _field(str(e))) from None
    return "plan", [i.to_json() for i in offer.instalments], offer.total_cents


async def _check_attempt(conn: asyncpg.Connection, call: ApiCall, debt_id: int) -> str | None:
    attempt_id = call.body.get("attempt_id")
    if attempt_id is None:
        if call.user.is_agent:
            raise Invalid("attempt_id: an agent records a promise on its call", "attempt_id")
        return None
    attempt = await conn.fetchrow(
        "SELECT agent_id, debt_id FROM call_attempts WHERE id = $1", attempt_id
    )
    if attempt is None:
        raise Invalid(f"attempt_id: no attempt {attempt_id}", "attempt_id")
    if call.user.is_agent and attempt["agent_id"] != call.user.agent_id:
        raise Forbidden("an agent may only record promises on its own calls")
    if attempt["debt_id"] is not None and attempt["debt_id"] != debt_id:
        raise Invalid("attempt_id: that call was about another debt", "attempt_id")
    return attempt_id


async def create_promise(call: ApiCall) -> Any:
    b = call.body
    async with call.pool.acquire() as conn, conn.transaction():
        debt = await conn.fetchrow(_DEBT, b["debt_id"])
        if debt is None:
            raise Invalid(f"debt_id: no debt {b['debt_id']}", "debt_id")
        attempt_id = await _check_attempt(conn, call, debt["id"])
        if debt["status"] in ("paid", "closed"):
            raise Conflict(f"debt {debt['id']} is {debt['status']}", "debt_id")
        # (under the debt's lock, as the IVR's charge writes its intent: a card payment whose
        # answer never came may still have paid it, or set up a plan with a promise of its own)
        if await conn.fetchval(
            "SELECT 1 FROM payments WHERE debt_id = $1 AND status = 'pending' LIMIT 1", debt["id"]
        ):
            raise Conflict(
                f"debt {debt['id']} has a card payment whose outcome is not known yet (pending "
                "with the gateway): no promise until it is settled",
                "debt_id",
            )
        active = await conn.fetchval(
            "SELECT id FROM promises WHERE debt_id = $1 AND status = 'active' LIMIT 1", debt["id"]
        )
        if active is not None:
            raise Conflict(f"debt {debt['id']} already has an active promise ({active})",
                           "debt_id")  # fmt: skip
        try:
            policy = ivr_plans.CreditorPolicy.from_json(
                jsonb(debt["policy"]) or {}, creditor=debt["creditor"]
            )
        except PolicyError as e:
            log.error("promise refused: %s", e)
            raise Conflict(f"the creditor's policy is invalid: {e}", "debt_id") from None
        kind, instalments, total = arrangement(
            b, debt["balance_cents"], policy, _today(call, debt["zone"])
        )
        row = None
        for _ in range(10):
            code = ivr_plans.confirmation_code(secrets.randbelow(10**7))
            if await conn.fetchval("SELECT 1 FROM promises WHERE confirmation_code = $1", code):
                continue
            async with conn.transaction():  # a savepoint: a code taken meanwhile
                try:
                    row = await conn.fetchrow(
                        _INSERT, debt["id"], attempt_id,
                        "agent" if call.user.is_agent else "api", json.dumps(instalments),
                        total, code, kind, date.fromisoformat(instalments[0]["due"]),
                        date.fromisoformat(instalments[-1]["due"]),
                    )  # fmt: skip
                except asyncpg.UniqueViolationError:
                    continue
            break
        if row is None:
            raise Conflict("no free confirmation code; try again")
        await conn.execute(
            "UPDATE debts SET status = 'promised' WHERE id = $1 AND status = 'open'", debt["id"]
        )
        await audit(conn, call.user.username, "promise.create", f"debt:{debt['id']}",
                    {"promise_id": row["id"], "kind": kind, "total_cents": total,
                     "instalments": len(instalments), "attempt_id": attempt_id})  # fmt: skip
    return promise_json(row)


async def list_promises(call: ApiCall) -> Any:
    q = call.query
    mine = call.user.agent_id if call.user.is_agent else None
    if call.user.is_agent and mine is None:
        return {"promises": []}
    rows = await call.pool.fetch(
        f"SELECT {_COLUMNS} FROM promises p"
        " WHERE ($1::bigint IS NULL OR p.debt_id = $1)"
        "   AND ($2::bigint IS NULL OR EXISTS (SELECT 1 FROM call_attempts ca"
        "        WHERE ca.debt_id = p.debt_id AND ca.agent_id = $2))"
        " ORDER BY p.created_at DESC, p.id DESC LIMIT $3",
        q.get("debt_id"),
        mine,
        q.get("limit", 100),
    )
    return {"promises": [promise_json(r) for r in rows]}


ROUTES = [
    ApiRoute("POST", "/promises", create_promise,
             "Record a promise to pay (amount and date, or an instalment plan)", "promises",
             body=_BODY, status=201, response="The promise with its confirmation code"),
    ApiRoute("GET", "/promises", list_promises, "Promises, newest first", "promises",
             query={"debt_id": ID, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}),
]  # fmt: skip
