"""Campaigns: list, create, edit, start/pause/stop and status (admin and supervisor).

A campaign is validated as the dialer will load it (:meth:`dialer.campaigns.Campaign.from_row`
and its rule packs), so a mistake is refused here with the dialer's own message and the field
named, instead of the dialer skipping the campaign later. Starting sets ``state = 'running'``;
the dialer of every node picks that up within ``dialer.refresh_s``. The state changes are a
table (:data:`TRANSITIONS`); anything else is a 409. So is making a campaign active (running
or paused) while another active one, not in preview mode, uses the same ``queue_name``: each
pacer counts its queue's free agents as its own, and two would dial for the same agents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg

from compliance import PackError
from dialer.campaigns import (
    LIVE_DISPOSITIONS,
    MODES,
    Campaign,
    CampaignError,
    check_agentless_flow,
)
from web._api import ApiCall, ApiRoute
from web._audit import audit
from web._exceptions import Conflict, Invalid, NotFound
from web._keys import IVR_SCRIPTS
from web._schema import CODE
from web._values import TZ, day_bounds, jsonb, object_schema, valid_e164, zone

MANAGERS = ("admin", "supervisor")
# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"draft", "paused", "stopped"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "stop": (frozenset({"draft", "running", "paused"}), "stopped"),
}
# Columns a client writes (code only on create), with their schemas; defaults are the table's.
_FIELDS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "creditor": {**CODE, "description": "the creditor's code"},
    "mode": {"type": "string", "enum": list(MODES)},
    # (not an agent's own preview queue, preview-<agent code>: that agent's logout and its
    # preview calls would take it out of, and send calls to, the campaign's queue)
    "queue_name": {"type": "string", "pattern": r"^(?!preview-)[A-Za-z0-9_.-]{1,64}$"},
    "trunk": {"type": "string", "minLength": 1, "maxLength": 128},
    "caller_id": {"type": ["string", "null"], "maxLength": 64},
    "compliance_packs": {
        "type": "array",
        "items": {"type": "string", "pattern": r"^[a-z0-9_]{1,64}$"},
        "maxItems": 32,
    },
    "ring_timeout_s": {"type": "integer", "minimum": 5, "maximum": 120},
    "window_margin_s": {"type": "integer", "minimum": 0, "maximum": 86400},
    "abandon_target": {"type": "number", "minimum": 0, "maximum": 1},
    "abandon_window_days": {"type": "integer", "minimum": 1, "maximum": 3650},
    "retry_schedule": {"type": "object", "description": "see README, Campaigns"},
    "agentless_flow": {"type": ["string", "null"], "pattern": r"^[A-Za-z0-9_.-]{1,64}$"},
    "settings": {
        "type": "object",
        "description": "language, voicemail, max_lines, priority, queue_wrapup_s",
    },
}
_DEFAULTS: dict[str, Any] = {
    "mode": "progressive",
    "queue_name": "collections",
    "trunk": "PJSIP/trunk",
    "caller_id": None,
    "compliance_packs": [],
    "ring_timeout_s": 25,
    "window_margin_s": 90,
    "abandon_target": 0.03,
    "abandon_window_days": 30,
    "retry_schedule": {},
    "agentless_flow": None,
    "settings": {},
}
_COLUMNS = [f for f in _FIELDS if f != "creditor"]
_JSON_COLUMNS = ("retry_schedule", "settings")
CREATE_BODY = object_schema({"code": CODE, **_FIELDS}, ("code", "name"))
EDIT_BODY = object_schema(dict(_FIELDS))
_SELECT = """
SELECT c.*, cr.code AS creditor FROM campaigns c
LEFT JOIN creditors cr ON cr.id = c.creditor_id
"""
_FIELD_IN_MESSAGE = re.compile(r"^campaign '.*?': ([a-z_]+(?:\.[A-Za-z0-9_]+)*)")


def campaign_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "creditor": row["creditor"],
        "state": row["state"],
        "mode": row["mode"],
        "queue_name": row["queue_name"],
        "trunk": row["trunk"],
        "caller_id": row["caller_id"],
        "compliance_packs": list(row["compliance_packs"]),
        "ring_timeout_s": row["ring_timeout_s"],
        "window_margin_s": row["window_margin_s"],
        "abandon_target": float(row["abandon_target"]),
        "abandon_window_days": row["abandon_window_days"],
        "retry_schedule": jsonb(row["retry_schedule"]),
        "agentless_flow": row["agentless_flow"],
        "settings": jsonb(row["settings"]),
        "created_at": row["created_at"],
    }


def _field_of(message: str) -> str:
    """The field a :class:`CampaignError` names (``settings.max_lines``)."""
    m = _FIELD_IN_MESSAGE.match(message)
    if m and m[1].split(".")[0] in _FIELDS:
        return m[1]
    return next((f for f in _FIELDS if f in message), "body")


_CALLER_NUMBER = re.compile(r'^\s*(?:"[^"<>]*"\s*|[^"<>]*?)?<\s*([^<>]*?)\s*>\s*$')


def caller_id_problem(caller_id: str | None) -> str | None:
    """Why ``caller_id`` would not show debtors a number they can call back (None: it does).

    A debt collector's call must say who is calling (FDCPA 15 U.S.C. 1692d(6)); in Mexico a
    collection agency may not call from a hidden or private number, only from those it has
    registered (CONDUSEF's rules for collection agencies, REDECO). Without a ``CallerID`` the
    Originate goes out with whatever the trunk has, often nothing. So the caller ID must carry
    a valid E.164 number: ``+525512345678`` or ``"Name" <+525512345678>``."""
    if caller_id is None or not caller_id.strip():
        return "none is set"
    m = _CALLER_NUMBER.match(caller_id)
    if valid_e164(m[1] if m else caller_id.strip()) is None:
        return 'it holds no valid E.164 number (+525512345678, or "Name" <+525512345678>)'
    return None


def _check_caller_id(code: str, caller_id: str | None, *, starting: bool) -> None:
    if caller_id is None and not starting:
        return  # (a draft may be set up before its number is known)
    problem = caller_id_problem(caller_id)
    if problem is not None:
        raise Invalid(
            f"caller_id: campaign {code!r} must show debtors a number they can call back "
            f"(FDCPA 1692d(6); CONDUSEF: never a hidden or private number): {problem}",
            "caller_id",
        )


def check_campaign(call: ApiCall, values: dict[str, Any], *, starting: bool = False) -> None:
    """Refuse (422) what the dialer would refuse to run, with its message; a campaign that
    starts needs a caller ID with a number (:func:`caller_id_problem`)."""
    row = {"id": 0, "state": "draft", **values}
    try:
        Campaign.from_row(row)
    except CampaignError as e:
        raise Invalid(str(e), _field_of(str(e))) from None
    _check_caller_id(values["code"], values.get("caller_id"), starting=starting)
    try:
        check_agentless_flow(
            values["code"], values.get("mode"), values.get("agentless_flow"),
            call.app.get(IVR_SCRIPTS),
        )  # fmt: skip
    except CampaignError as e:
        raise Invalid(str(e), "agentless_flow") from None
    try:
        call.gate.rules(tuple(values["compliance_packs"]))
    except PackError as e:
        raise Invalid(f"campaign {values['code']!r}: compliance_packs: {e}",
                      "compliance_packs") from None  # fmt: skip


async def _creditor_id(conn: asyncpg.Connection, code: str | None) -> int | None:
    if code is None:
        return None
    found = await conn.fetchval("SELECT id FROM creditors WHERE code = $1", code)
    if found is None:
        raise Invalid(f"creditor: no creditor {code!r}", "creditor")
    return found


async def _fetch(conn: asyncpg.Connection | asyncpg.Pool, code: str) -> asyncpg.Record:
    row = await conn.fetchrow(_SELECT + " WHERE c.code = $1", code)
    if row is None:
        raise NotFound(f"no campaign {code!r}")
    return row


async def list_campaigns(call: ApiCall) -> Any:
    rows = await call.pool.fetch(_SELECT + " ORDER BY c.code")
    return {"campaigns": [campaign_json(r) for r in rows]}


async def get_campaign(call: ApiCall) -> Any:
    return campaign_json(await _fetch(call.pool, call.params["code"]))


async def create_campaign(call: ApiCall) -> Any:
    body = call.body
    values = {**_DEFAULTS, **{k: v for k, v in body.items() if k != "creditor"}}
    check_campaign(call, values)
    async with call.pool.acquire() as conn, conn.transaction():
        creditor_id = await _creditor_id(conn, body.get("creditor"))
        names = ["code", "creditor_id", *_COLUMNS]
        args = [values["code"], creditor_id, *(_db(c, values[c]) for c in _COLUMNS)]
        casts = ["$1", "$2"] + [
            f"${i}::jsonb" if c in _JSON_COLUMNS else f"${i}" for i, c in enumerate(_COLUMNS, 3)
        ]
        inserted = await conn.fetchval(
            f"INSERT INTO campaigns ({', '.join(names)}) VALUES ({', '.join(casts)})"
            " ON CONFLICT (code) DO NOTHING RETURNING id",
            *args,
        )
        if inserted is None:
            raise Conflict(f"campaign {values['code']!r} already exists", "code")
        await audit(conn, call.user.username, "campaign.create", f"campaign:{values['code']}",
                    {"values": body})  # fmt: skip
        row = await _fetch(conn, values["code"])
    return campaign_json(row)


def _db(column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON_COLUMNS else value


async def edit_campaign(call: ApiCall) -> Any:
    code = call.params["code"]
    changes = call.body
    if not changes:
        raise Invalid("body: nothing to change", "body")
    async with call.pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(_SELECT + " WHERE c.code = $1 FOR UPDATE OF c", code)
        if current is None:
            raise NotFound(f"no campaign {code!r}")
        old = campaign_json(current)
        values = {"code": code, **{c: old[c] for c in _COLUMNS}}
        values.update({k: v for k, v in changes.items() if k != "creditor"})
        check_campaign(call, values)
        moved = values["queue_name"] != old["queue_name"] or values["mode"] != old["mode"]
        if current["state"] in ACTIVE and values["mode"] != "preview" and moved:
            # (an active campaign moved onto a queue, or out of preview mode, is started there)
            await _check_queue_free(conn, code, values["queue_name"])
        sets = [f"{c} = ${i}::jsonb" if c in _JSON_COLUMNS else f"{c} = ${i}"
                for i, c in enumerate(_COLUMNS, 2)]  # fmt: skip
        args: list[Any] = [code, *(_db(c, values[c]) for c in _COLUMNS)]
        if "creditor" in changes:
            sets.append(f"creditor_id = ${len(args) + 1}")
            args.append(await _creditor_id(conn, changes["creditor"]))
        await conn.execute(f"UPDATE campaigns SET {', '.join(sets)} WHERE code = $1", *args)
        diff = {k: {"from": old.get(k), "to": v} for k, v in changes.items() if old.get(k) != v}
        await audit(conn, call.user.username, "campaign.edit", f"campaign:{code}",
                    {"changes": diff})  # fmt: skip
        row = await _fetch(conn, code)
    return campaign_json(row)


# The states in which a campaign's queue is worked: its pacer runs and its agents are seated.
ACTIVE = frozenset({"running", "paused"})
_QUEUE_LOCK = 0x71756575  # pg_advisory_xact_lock(_QUEUE_LOCK, hashtext(queue)): "queu"
_SAME_QUEUE = """
SELECT code, state FROM campaigns
WHERE queue_name = $1 AND code <> $2 AND state IN ('running', 'paused') AND mode <> 'preview'
ORDER BY code LIMIT 1
"""


async def _check_queue_free(conn: asyncpg.Connection, code: str, queue: str) -> None:
    """Refuse (409) to activate a campaign on the queue of another active one.

    Each campaign's pacer counts the free members of its queue as its own agents: two on one
    queue both dial for the same agents, and the calls no agent is left for are abandoned. The
    queue's lock makes two starts at once take turns (the second sees the first)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _QUEUE_LOCK, queue)
    other = await conn.fetchrow(_SAME_QUEUE, queue, code)
    if other is not None:
        raise Conflict(
            f"campaign {other['code']!r} is {other['state']} on queue {queue}: two active "
            "campaigns on one queue would count the same agents as free and both dial for "
            f"them; stop {other['code']!r} or give {code!r} a queue_name of its own",
            "queue_name",
        )


def _transition(action: str) -> Callable[[ApiCall], Awaitable[Any]]:
    allowed_from, target = TRANSITIONS[action]

    async def change_state(call: ApiCall) -> Any:
        code = call.params["code"]
        async with call.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_SELECT + " WHERE c.code = $1 FOR UPDATE OF c", code)
            if row is None:
                raise NotFound(f"no campaign {code!r}")
            if row["state"] not in allowed_from:
                raise Conflict(f"campaign {code!r} is {row['state']}: cannot {action} it", "state")
            if target == "running":
                current = campaign_json(row)
                check_campaign(call, {"code": code, **{c: current[c] for c in _COLUMNS}},
                               starting=True)  # fmt: skip
            if target in ACTIVE and row["state"] not in ACTIVE and row["mode"] != "preview":
                await _check_queue_free(conn, code, row["queue_name"])
            await conn.execute("UPDATE campaigns SET state = $2 WHERE code = $1", code, target)
            await audit(conn, call.user.username, f"campaign.{action}", f"campaign:{code}",
                        {"from": row["state"], "to": target})  # fmt: skip
            row = await _fetch(conn, code)
        return campaign_json(row)

    change_state.__name__ = f"{action}_campaign"
    return change_state


_STATUS = """
SELECT
  (SELECT coalesce(jsonb_object_agg(state, n), '{}') FROM
     (SELECT state, count(*) AS n FROM leads WHERE campaign_id = $1 GROUP BY state) l) AS leads,
  (SELECT coalesce(jsonb_object_agg(d, n), '{}') FROM
     (SELECT coalesce(disposition, 'open') AS d, count(*) AS n FROM call_attempts
      WHERE campaign_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY 1) a)
     AS attempts_today,
  (SELECT count(*) FILTER (WHERE abandoned) FROM call_attempts
      WHERE campaign_id = $1 AND finalized_at >= $2 AND finalized_at < $3) AS abandoned_today,
  (SELECT count(*) FILTER (WHERE disposition = ANY($5::text[]) OR abandoned)
     FROM call_attempts
      WHERE campaign_id = $1 AND finalized_at >= $2 AND finalized_at < $3) AS live_today,
  (SELECT count(*) FILTER (WHERE abandoned) FROM call_attempts
      WHERE campaign_id = $1 AND finalized_at >= $4) AS abandoned_window,
  (SELECT count(*) FILTER (WHERE disposition = ANY($5::text[]) OR abandoned)
     FROM call_attempts
      WHERE campaign_id = $1 AND finalized_at >= $4) AS live_window
"""


def _rate(abandoned: int, live: int) -> float:
    return round(abandoned / live, 6) if live else 0.0


async def campaign_status(call: ApiCall) -> Any:
    """Abandonment is abandoned calls over calls a person answered (``LIVE_DISPOSITIONS``)."""
    code = call.params["code"]
    tz = zone(call.query.get("tz"))
    now = call.now()
    day = now.astimezone(tz).date()
    start, end = day_bounds(day, tz)
    row = await _fetch(call.pool, code)
    since = now - timedelta(days=row["abandon_window_days"])
    s = await call.pool.fetchrow(
        _STATUS, row["id"], start, end, since, list(LIVE_DISPOSITIONS)
    )  # fmt: skip
    return {
        "code": code,
        "state": row["state"],
        "day": day.isoformat(),
        "tz": tz.key,
        "leads": jsonb(s["leads"]),
        "attempts_today": jsonb(s["attempts_today"]),
        "abandonment": {
            "target": float(row["abandon_target"]),
            "today": {
                "abandoned": s["abandoned_today"],
                "live": s["live_today"],
                "rate": _rate(s["abandoned_today"], s["live_today"]),
            },
            "window": {
                "days": row["abandon_window_days"],
                "since": since,
                "abandoned": s["abandoned_window"],
                "live": s["live_window"],
                "rate": _rate(s["abandoned_window"], s["live_window"]),
            },
        },
    }


_P = {"code": CODE}
ROUTES = [
    ApiRoute("GET", "/campaigns", list_campaigns, "List campaigns", "campaigns", MANAGERS),
    ApiRoute("POST", "/campaigns", create_campaign, "Create a campaign (state draft)",
             "campaigns", MANAGERS, body=CREATE_BODY, status=201, response="The campaign"),
    ApiRoute("GET", "/campaigns/{code}", get_campaign, "One campaign", "campaigns", MANAGERS,
             params=_P),
    ApiRoute("PATCH", "/campaigns/{code}", edit_campaign, "Edit a campaign (fields given)",
             "campaigns", MANAGERS, params=_P, body=EDIT_BODY, response="The campaign"),
    *(
        ApiRoute("POST", f"/campaigns/{{code}}/{action}", _transition(action),
                 f"{action.capitalize()} a campaign (state {target})", "campaigns", MANAGERS,
                 params=_P, response="The campaign")
        for action, (_, target) in TRANSITIONS.items()
    ),
    ApiRoute("GET", "/campaigns/{code}/status", campaign_status,
             "State, leads by state, today's attempts by disposition, abandonment",
             "campaigns", MANAGERS, params=_P, query={"tz": TZ}),
]  # fmt: skip
