"""Agents, their states, their calls and the disposition of each call.

An agent (a user linked to an ``agents`` row) sees and changes only its own: its state, its
calls (``GET /attempts`` always filters to them) and their dispositions. Supervisors and
admins see everyone. Exactly one agent disposition per attempt (``dispositions.attempt_id`` is
unique): a second is a 409. A callback asked during the call is scheduled in the same
transaction (:func:`dialer.callbacks.schedule_callback`).

Disposition codes and whether each means the agent spoke with the debtor (a right-party
contact, counted by the daily report) are :data:`DISPOSITIONS`. ``wrong_party`` also marks the
number ``wrong_party``, so lead selection stops dialing it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import asyncpg

from dialer.callbacks import CallbackError, schedule_callback
from puente.redact import mask_number
from web._api import ApiCall, ApiRoute
from web._audit import audit
from web._exceptions import Conflict, Forbidden, Invalid, NotFound
from web._schema import CODE, DATE_TIME, UUID
from web._values import object_schema, parse_time

log = logging.getLogger(__name__)

# code -> a right-party contact (the agent spoke with the debtor, identity confirmed)
DISPOSITIONS: dict[str, bool] = {
    "promise_to_pay": True,
    "paid": True,
    "callback": True,  # the debtor asked to be called back (callback_at required)
    "refused_to_pay": True,
    "dispute": True,
    "hardship": True,
    "cease_request": True,
    "third_party": False,  # someone else answered; nothing disclosed
    "wrong_party": False,  # the number is not the debtor's
    "left_message": False,
    "no_contact": False,  # silence, a bad line
    "deceased": False,
    "other": False,
}
RIGHT_PARTY_CODES = tuple(code for code, rpc in DISPOSITIONS.items() if rpc)
SETTABLE_STATES = ("ready", "paused", "logged_out")
MAX_CALLBACK_DAYS = 90

_STATE_BODY = object_schema(
    {
        "state": {"type": "string", "enum": list(SETTABLE_STATES)},
        "reason": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    ("state",),
)
_DISPOSITION_BODY = object_schema(
    {
        "code": {"type": "string", "enum": list(DISPOSITIONS)},
        "notes": {"type": "string", "maxLength": 4000},
        "callback_at": DATE_TIME,
    },
    ("code",),
)
_AGENTS = """
SELECT a.id, a.code, a.name, a.interface, u.username, s.state, s.reason, s.at AS state_at
FROM agents a
LEFT JOIN users u ON u.id = a.user_id
LEFT JOIN LATERAL (
    SELECT st.state, st.reason, st.at FROM agent_states st
    WHERE st.agent_id = a.id ORDER BY st.at DESC, st.id DESC LIMIT 1
) s ON true
"""


_ATTEMPT_COLUMNS = """
SELECT ca.id, c.code AS campaign, ca.direction, ca.state, ca.disposition, ca.person_id,
       ca.debt_id, n.e164, ag.code AS agent, d.code AS agent_disposition, ca.created_at,
       ca.answered_at, ca.connected_at, ca.ended_at
FROM call_attempts ca
LEFT JOIN campaigns c ON c.id = ca.campaign_id
LEFT JOIN phone_numbers n ON n.id = ca.phone_id
LEFT JOIN agents ag ON ag.id = ca.agent_id
LEFT JOIN dispositions d ON d.attempt_id = ca.id"""

# Attempts newest first, at most $3: one agent's ($1), of campaign $2 when it is not NULL.
#
# Three statements, not ``($1 IS NULL OR ca.agent_id = $1)`` and ``($2 IS NULL OR c.code = $2)``:
# a generic plan (made without the values, cached after a few executions) cannot use an index
# through the OR, and read and sorted every attempt. Each reads its own index newest first and
# stops after the page: an agent's by call_attempts_agent_idx (its campaign, if asked, filtered
# on the way), one campaign's by call_attempts_campaign_created_idx, everyone's by
# call_attempts_created_idx. That last one is partial on ``created_at > '-infinity'`` (every
# attempt), which only everyone's list states: a generic plan guesses how many of an agent's or
# a campaign's attempts are recent, and would otherwise walk everyone's newest first to find
# the few of an agent or a campaign without recent calls, reading the whole history.
_ATTEMPTS_OF_AGENT = f"""{_ATTEMPT_COLUMNS}
WHERE ca.agent_id = $1 AND ($2::text IS NULL OR c.code = $2)
ORDER BY ca.created_at DESC, ca.id
LIMIT $3
"""


def _newest_sql(which: str) -> str:
    """Everyone's newest attempts (``$1`` is NULL) that match ``which``: the page's ids from an
    index in the list's order, then their rows and names by key. The ids go through
    ``= ANY(ARRAY(...))``: a generic plan guesses a parameterised LIMIT at a tenth of the rows
    (of the whole table here), and joined that many, hashing whole tables; an array it guesses
    at ten elements."""
    return f"""{_ATTEMPT_COLUMNS}
WHERE ca.id = ANY(ARRAY(
    SELECT a.id FROM call_attempts a
    WHERE $1::bigint IS NULL AND {which}
    ORDER BY a.created_at DESC, a.id
    LIMIT $3))
ORDER BY ca.created_at DESC, ca.id
"""


_ATTEMPTS = _newest_sql("$2::text IS NULL AND a.created_at > '-infinity'")
_ATTEMPTS_OF_CAMPAIGN = _newest_sql(
    "a.campaign_id = (SELECT c.id FROM campaigns c WHERE c.code = $2)"
)


def _agent_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "interface": row["interface"],
        "username": row["username"],
        "state": row["state"] or "logged_out",
        "reason": row["reason"],
        "state_at": row["state_at"],
    }


async def list_agents(call: ApiCall) -> Any:
    if call.user.is_agent and call.user.agent_id is None:
        return {"agents": []}
    only = call.user.agent_id if call.user.is_agent else None
    rows = await call.pool.fetch(
        _AGENTS + " WHERE ($1::bigint IS NULL OR a.id = $1) ORDER BY a.code", only
    )
    return {"agents": [_agent_json(r) for r in rows]}


async def set_agent_state(call: ApiCall) -> Any:
    code = call.params["code"]
    state, reason = call.body["state"], call.body.get("reason")
    if state == "paused" and not reason:
        raise Invalid("reason: a pause needs a reason", "reason")
    async with call.pool.acquire() as conn, conn.transaction():
        agent = await conn.fetchrow("SELECT id FROM agents WHERE code = $1", code)
        if agent is None:
            raise NotFound(f"no agent {code!r}")
        if call.user.is_agent and agent["id"] != call.user.agent_id:
            raise Forbidden("an agent may only change its own state")
        await conn.execute(
            "INSERT INTO agent_states (agent_id, state, reason, at) VALUES ($1, $2, $3, $4)",
            agent["id"],
            state,
            reason if state == "paused" else None,
            call.now(),
        )
        await audit(conn, call.user.username, "agent.state", f"agent:{code}",
                    {"state": state, "reason": reason})  # fmt: skip
        row = await conn.fetchrow(_AGENTS + " WHERE a.id = $1", agent["id"])
    return _agent_json(row)


def _attempt_json(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out["id"] = str(row["id"])
    out["phone"] = mask_number(out.pop("e164"))
    return out


async def list_attempts(call: ApiCall) -> Any:
    """Newest first. An agent always gets only its own calls; others with ``mine=1`` too."""
    mine = call.user.is_agent or call.query.get("mine", False)
    if mine and call.user.agent_id is None:
        return {"attempts": []}
    campaign = call.query.get("campaign")
    sql = _ATTEMPTS if campaign is None else _ATTEMPTS_OF_CAMPAIGN
    if mine:
        sql = _ATTEMPTS_OF_AGENT
    rows = await call.pool.fetch(
        sql, call.user.agent_id if mine else None, campaign, call.query.get("limit", 100)
    )
    return {"attempts": [_attempt_json(r) for r in rows]}


async def record_disposition(call: ApiCall) -> Any:
    attempt_id = call.params["id"]
    b = call.body
    now = call.now()
    callback_at = parse_time(b["callback_at"]) if "callback_at" in b else None
    if b["code"] == "callback" and callback_at is None:
        raise Invalid("callback_at: a callback needs its time", "callback_at")
    if callback_at is not None and not now < callback_at <= now + timedelta(MAX_CALLBACK_DAYS):
        raise Invalid(f"callback_at: must be in the next {MAX_CALLBACK_DAYS} days",
                      "callback_at")  # fmt: skip
    async with call.pool.acquire() as conn, conn.transaction():
        attempt = await conn.fetchrow(
            "SELECT id, agent_id, person_id, debt_id, phone_id FROM call_attempts WHERE id = $1",
            attempt_id,
        )
        if attempt is None:
            raise NotFound(f"no attempt {attempt_id}")
        if call.user.is_agent and (
            attempt["agent_id"] is None or attempt["agent_id"] != call.user.agent_id
        ):
            raise Forbidden("an agent may only dispose of its own calls")
        row = await conn.fetchrow(
            "INSERT INTO dispositions (attempt_id, code, source, agent_id, notes, callback_at,"
            " at) VALUES ($1, $2, 'agent', $3, $4, $5, $6)"
            " ON CONFLICT (attempt_id) DO NOTHING RETURNING id, at",
            attempt["id"],
            b["code"],
            attempt["agent_id"],
            b.get("notes"),
            callback_at,
            now,
        )
        if row is None:
            raise Conflict(f"attempt {attempt_id} already has its disposition", "code")
        callback_id = None
        if callback_at is not None:
            if attempt["person_id"] is None or attempt["debt_id"] is None:
                raise Invalid("callback_at: this call has no debtor to call back", "callback_at")
            try:
                callback_id = await schedule_callback(
                    conn,
                    debt_id=attempt["debt_id"],
                    person_id=attempt["person_id"],
                    phone_id=attempt["phone_id"],
                    due_at=callback_at,
                    source="agent" if call.user.is_agent else "api",
                    requested_by=call.user.username,
                )
            except CallbackError as e:
                raise Invalid(f"callback_at: {e}", "callback_at") from None
        if b["code"] == "wrong_party" and attempt["phone_id"] is not None:
            await conn.execute(
                "UPDATE phone_numbers SET status = 'wrong_party' WHERE id = $1",
                attempt["phone_id"],
            )
        await audit(conn, call.user.username, "disposition.record", f"attempt:{attempt_id}",
                    {"code": b["code"], "callback_at": callback_at, "callback_id": callback_id,
                     "notes_chars": len(b.get("notes") or "")})  # fmt: skip
    return {
        "id": row["id"],
        "attempt_id": str(attempt_id),
        "code": b["code"],
        "right_party": DISPOSITIONS[b["code"]],
        "callback_at": callback_at,
        "callback_id": callback_id,
        "at": row["at"],
    }


ROUTES = [
    ApiRoute("GET", "/agents", list_agents,
             "Agents and their current state (an agent: itself only)", "agents"),
    ApiRoute("POST", "/agents/{code}/state", set_agent_state,
             "Set an agent ready, paused (with a reason) or logged out (an agent: its own)",
             "agents", params={"code": CODE}, body=_STATE_BODY, response="The agent"),
    ApiRoute("GET", "/attempts", list_attempts,
             "Call attempts, newest first (an agent: its own only)", "calls",
             query={"mine": {"type": "boolean"}, "campaign": CODE,
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}),
    ApiRoute("POST", "/attempts/{id}/disposition", record_disposition,
             "Record the agent disposition of a call (once), with an optional callback",
             "calls", params={"id": UUID}, body=_DISPOSITION_BODY, status=201,
             response="The disposition"),
]  # fmt: skip
