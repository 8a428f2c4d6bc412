"""Do-not-call and cease-communication entries, consents, and the what-if compliance check.

Anyone logged in may record a block or a consent (an agent hears "stop calling me" first);
only admins and supervisors lift a block. Blocks and consents take effect at the next
compliance decision: the gate reads them in its snapshot. A reference in a body that does not
exist is a 422 naming the field (404 is for the record a path names).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import asyncpg

from compliance import CALL_CHANNELS, PackError
from compliance._types import LEDGER_CHANNELS
from puente.redact import mask_number
from web._api import ApiCall, ApiRoute
from web._audit import audit
from web._campaigns import MANAGERS
from web._exceptions import Conflict, Forbidden, Invalid, NotFound
from web._schema import DATE_TIME, E164, ID, INT64_MAX
from web._values import object_schema, parse_time

log = logging.getLogger(__name__)

BLOCK_CHANNELS = ("all", "phone", "sms", *CALL_CHANNELS)
_TEXT = {"type": "string", "maxLength": 500}
_BLOCK_BODY = object_schema(
    {
        "kind": {"type": "string", "enum": ["dnc", "cease"]},
        "e164": E164,
        "person_id": ID,
        "debt_id": ID,
        "channel": {"type": "string", "enum": list(BLOCK_CHANNELS)},
        "reason": _TEXT,
        "effective_at": DATE_TIME,
    },
    ("kind",),
)
_CONSENT_BODY = object_schema(
    {
        "e164": E164,
        "phone_id": ID,
        "person_id": {**ID, "description": "whose number, when several persons share it"},
        "channel": {"type": "string", "enum": list(LEDGER_CHANNELS)},
        "granted": {"type": "boolean"},
        "source": {"type": "string", "minLength": 1, "maxLength": 200},
        "recorded_at": DATE_TIME,
    },
    ("channel", "granted", "source"),
)
_CHECK_BODY = object_schema(
    {
        "person_id": ID,
        "debt_ids": {"type": "array", "items": ID, "maxItems": 100},
        "phone": {
            "type": ["string", "integer"],
            "pattern": E164["pattern"],
            "minimum": 1,
            "maximum": INT64_MAX,
            "description": "an E.164 number or a phone_numbers id",
        },
        "channel": {"type": "string", "enum": list(CALL_CHANNELS)},
        "packs": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[a-z0-9_]{1,64}$"},
            "minItems": 1,
            "maxItems": 32,
        },
        "at": DATE_TIME,
        "margin_s": {"type": "integer", "minimum": 0, "maximum": 86400},
    },
    ("person_id", "phone", "channel", "packs"),
)
_BLOCK_COLUMNS = """id, kind, e164, person_id, debt_id, channel, source, reason, effective_at,
    revoked_at, created_at"""
FUTURE_SLACK = timedelta(minutes=5)


def _block_json(row: asyncpg.Record) -> dict[str, Any]:
    return dict(row)


async def create_block(call: ApiCall) -> Any:
    b = call.body
    person_id, debt_id = b.get("person_id"), b.get("debt_id")
    if b.get("e164") is None and person_id is None and debt_id is None:
        raise Invalid("e164: give a number, a person_id or a debt_id", "e164")
    now = call.now()
    effective_at = parse_time(b["effective_at"]) if "effective_at" in b else now
    if effective_at > now + FUTURE_SLACK:
        # (a do-not-call or cease dated ahead was stored, and did nothing until then: the
        # debtor who said "stop calling me" went on being called)
        raise Invalid("effective_at: a block takes effect when it is recorded; it may be dated "
                      "back, not ahead", "effective_at")  # fmt: skip
    async with call.pool.acquire() as conn, conn.transaction():
        if debt_id is not None:
            owner = await conn.fetchval("SELECT person_id FROM debts WHERE id = $1", debt_id)
            if owner is None:
                raise Invalid(f"debt_id: no debt {debt_id}", "debt_id")
            if person_id is not None and person_id != owner:
                raise Invalid(f"debt_id: debt {debt_id} is not person {person_id}'s", "debt_id")
            person_id = owner
        elif person_id is not None and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM persons WHERE id = $1)", person_id
        ):
            raise Invalid(f"person_id: no person {person_id}", "person_id")
        row = await conn.fetchrow(
            f"INSERT INTO contact_blocks (kind, e164, person_id, debt_id, channel, source,"
            f" reason, effective_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            f" RETURNING {_BLOCK_COLUMNS}",
            b["kind"],
            b.get("e164"),
            person_id,
            debt_id,
            b.get("channel", "all"),
            f"web:{call.user.username}",
            b.get("reason"),
            effective_at,
        )
        await audit(conn, call.user.username, f"block.{b['kind']}", f"block:{row['id']}",
                    {"e164": mask_number(b.get("e164")) if b.get("e164") else None,
                     "person_id": person_id, "debt_id": debt_id, "channel": row["channel"],
                     "reason": b.get("reason")})  # fmt: skip
    log.info("block %d (%s) recorded by %s: %s person %s debt %s", row["id"], b["kind"],
             call.user.username, mask_number(b.get("e164")), person_id, debt_id)  # fmt: skip
    return _block_json(row)


async def list_blocks(call: ApiCall) -> Any:
    """Blocks, newest first. An agent lists those of a number it gives or of a person on
    one of its calls, with numbers masked: the whole list (every do-not-call number in full,
    every reason) is the managers'."""
    q = call.query
    agent = call.user.is_agent
    if agent:
        if q.get("e164") is None and q.get("person_id") is None:
            raise Invalid("e164: an agent lists the blocks of a number or a person", "e164")
        if q.get("person_id") is not None and not await call.pool.fetchval(
            "SELECT 1 FROM call_attempts WHERE agent_id = $1 AND person_id = $2 LIMIT 1",
            call.user.agent_id,
            q["person_id"],
        ):
            raise Forbidden("an agent lists the blocks of the persons on its own calls")
    rows = await call.pool.fetch(
        f"SELECT {_BLOCK_COLUMNS} FROM contact_blocks"
        " WHERE ($1::text IS NULL OR e164 = $1) AND ($2::bigint IS NULL OR person_id = $2)"
        "   AND ($3 OR revoked_at IS NULL)"
        " ORDER BY id DESC LIMIT $4",
        q.get("e164"),
        q.get("person_id"),
        q.get("include_revoked", False),
        q.get("limit", 100),
    )
    blocks = [_block_json(r) for r in rows]
    if agent:
        for b in blocks:
            b["e164"] = mask_number(b["e164"]) if b["e164"] else None
    return {"blocks": blocks}


async def revoke_block(call: ApiCall) -> Any:
    block_id = call.params["id"]
    async with call.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE contact_blocks SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
            f" RETURNING {_BLOCK_COLUMNS}",
            block_id,
            call.now(),
        )
        if row is None:
            if await conn.fetchval("SELECT id FROM contact_blocks WHERE id = $1", block_id):
                raise Conflict(f"block {block_id} is already revoked")
            raise NotFound(f"no block {block_id}")
        await audit(conn, call.user.username, "block.revoke", f"block:{block_id}",
                    {"kind": row["kind"]})  # fmt: skip
    return _block_json(row)


async def _phone_id(conn: asyncpg.Connection, body: dict[str, Any]) -> int:
    if "phone_id" in body:
        found = await conn.fetchval(
            "SELECT id FROM phone_numbers WHERE id = $1 AND ($2::bigint IS NULL OR person_id = $2)",
            body["phone_id"],
            body.get("person_id"),
        )
        if found is None:
            raise Invalid(f"phone_id: no number {body['phone_id']}", "phone_id")
        return found
    if "e164" not in body:
        raise Invalid("e164: give the number (e164) or its phone_id", "e164")
    ids = await conn.fetch(
        "SELECT id FROM phone_numbers WHERE e164 = $1 AND ($2::bigint IS NULL OR person_id = $2)",
        body["e164"],
        body.get("person_id"),
    )
    if not ids:
        raise Invalid("e164: no such number on file", "e164")
    if len(ids) > 1:
        raise Invalid(f"person_id: {len(ids)} persons have this number; say whose", "person_id")
    return ids[0]["id"]


async def record_consent(call: ApiCall) -> Any:
    b = call.body
    now = call.now()
    recorded_at = parse_time(b["recorded_at"]) if "recorded_at" in b else now
    if recorded_at > now + FUTURE_SLACK:
        raise Invalid("recorded_at: a consent cannot be recorded in the future", "recorded_at")
    async with call.pool.acquire() as conn, conn.transaction():
        phone_id = await _phone_id(conn, b)
        row = await conn.fetchrow(
            "INSERT INTO consents (phone_id, channel, granted, source, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5)"
            " RETURNING id, phone_id, channel, granted, source, recorded_at, created_at",
            phone_id,
            b["channel"],
            b["granted"],
            b["source"],
            recorded_at,
        )
        await audit(conn, call.user.username, "consent.record", f"phone:{phone_id}",
                    {"consent_id": row["id"], "channel": b["channel"], "granted": b["granted"],
                     "source": b["source"]})  # fmt: skip
    return dict(row)


async def compliance_check(call: ApiCall) -> Any:
    """What the gate would decide now (or ``at``): nothing is reserved or stored."""
    b = call.body
    try:
        call.gate.rules(tuple(b["packs"]))
    except PackError as e:
        raise Invalid(f"packs: {e}", "packs") from None
    decision = await call.gate.check(
        person_id=b["person_id"],
        debt_ids=b.get("debt_ids", []),
        phone=b["phone"],
        channel=b["channel"],
        packs=tuple(b["packs"]),
        now=parse_time(b["at"]) if "at" in b else call.now(),
        margin_s=b.get("margin_s"),
    )
    return decision.to_dict()


ROUTES = [
    ApiRoute("POST", "/blocks", create_block, "Record a do-not-call or cease entry", "contacts",
             body=_BLOCK_BODY, status=201, response="The block"),
    ApiRoute("GET", "/blocks", list_blocks, "Blocks of a number or a person, newest first",
             "contacts", query={"e164": E164, "person_id": ID, "include_revoked":
                                {"type": "boolean"},
                                "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}),
    ApiRoute("POST", "/blocks/{id}/revoke", revoke_block, "Lift a block", "contacts", MANAGERS,
             params={"id": ID}, response="The block"),
    ApiRoute("POST", "/consents", record_consent, "Record a consent given or withdrawn",
             "contacts", body=_CONSENT_BODY, status=201, response="The consent"),
    ApiRoute("POST", "/compliance/check", compliance_check,
             "What compliance would decide for a dial (nothing reserved)", "compliance",
             body=_CHECK_BODY, response="The decision with its reasons"),
]  # fmt: skip
