"""Agents, their states, their calls and the disposition of each call.

An agent (a user linked to an ``agents`` row) sees and changes only its own: its state, its
calls (``GET /attempts`` always filters to them) and their dispositions. Supervisors and
admins see everyone. Exactly one agent disposition per attempt (``dispositions.attempt_id`` is
unique): a second is a 409. A callback asked during the call is scheduled in the same
transaction (:func:`dialer.callbacks.schedule_callback`).

Disposition codes and whether each means the agent spoke with the debtor (a right-party
contact, counted by the daily report) are :data:`DISPOSITIONS`. ``wrong_party`` also marks the
number ``wrong_party``, so lead selection stops dialing it; ``cease_request`` and ``deceased``
write a person-wide cease block (:data:`BLOCKING`), which the compliance gate enforces on every
later dial, from any campaign.

An agent works one campaign at a time (``agents.campaign_id``, as VICIdial's agents log into
one campaign): each campaign's pacer counts the free agents of its own queue, and an agent in
two active campaigns' queues was counted free by both, and dialed for by both (abandoned calls
over the legal 3 %). Going ``ready`` needs that campaign (:func:`choose_campaign`): the one the
request names (``"campaign": "<code>"``), else the agent's stored one if it is still active,
else the only active one; with several active and none named it is a 422 naming them. Active
means ``running`` or ``paused`` and not in preview mode (preview calls go to the agent's own
queue ``preview-<code>``, joined when it asks for a lead). The choice is stored, and kept when
the agent logs out (the next login's default). With no campaign active an agent can go ready
only for the inbound queue, when one is configured (``WebSettings.inbound_queue``).

The state is the agent's membership of Asterisk's queues (app_queue, over AMI), changed there
first: :func:`queue_steps` says which actions a change needs (pure), :func:`apply_queue_steps`
sends them; only when Asterisk has done them (or says it was so already) is the state row
written. ``ready`` adds the agent's ``interface`` (``QueueAdd``, unpaused, its name as
``MemberName``) to its campaign's queue and the inbound queue (if configured, and not another
active campaign's queue); ``ready`` while logged in unpauses it first (app_queue's autopause
too), and, naming another campaign, moves it: ``QueueRemove`` from the old campaign's queue,
then ``QueueAdd`` to the new one. ``paused`` pauses it in all its queues (``QueuePause`` with
the reason, no ``Queue``); ``logged_out`` removes it from its campaign's queue, the inbound
queue and its own preview queue (``QueueRemove``). The dialer's leader of each campaign keeps
its queue so too (dialer/runner.py ``_seat_agents``). The PBX link down, or Asterisk refusing,
is a 422 naming what was refused, and nothing is recorded; what this request had already
changed is taken back. An application without a PBX link (built without
:func:`web._desktop.desktop_extension`) records states and campaigns only.

Admins and supervisors create agents rows (``POST /agents``, ``puente agents add``: a code, a
name, and the ``interface`` that is its Asterisk queue member, ``Technology/resource`` such as
``PJSIP/agent101``) and edit their name and interface (``PATCH /agents/{code}``). The interface
changes only while the agent is logged out: a member left in a queue under its old interface
would be counted free by the pacer, and dialed for, with nobody behind it. An agent is
deactivated (``{"active": false}``, ``puente agents edit CODE --inactive``) once logged out, for
the same reason; it keeps its history, and it can log in again only when reactivated (going
ready or paused is a 409 meanwhile). Disabling an agent's user (``puente users disable``) logs
the agent out too: the campaign's leader then takes it out of the campaign's queue, and the
service's logged-out sweeper (web/_logged_out.py) out of every other queue it is still in (the
inbound queue, its preview queue), so a person who left is neither dialed for nor rung.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp import web

from dialer.agents import (
    NO_SUCH_QUEUE,
    QueueMember,
    QueueStep,
    queue_add,
    queue_pause,
    queue_remove,
)
from dialer.callbacks import CallbackError, schedule_callback
from dialer.preview import preview_queue
from pbx import PbxError
from pbx.ami import ActionFateUnknown, ActionTimeout, AmiClient, NotConnected
from puente.redact import mask_number, mask_numbers_in
from web._api import ApiCall, ApiRoute
from web._audit import audit
from web._campaigns import MANAGERS
from web._exceptions import Conflict, Forbidden, Invalid, NotFound
from web._schema import CODE, DATE_TIME, UUID, validate
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
# Codes after which nobody may be called back (a callback_at with them is refused): the lead
# would be made due and dialed at that time.
NO_CALLBACK: dict[str, str] = {
    "cease_request": "the debtor asked not to be contacted",
    "deceased": "the debtor is deceased",
    "wrong_party": "the number is not the debtor's",
}
# Codes that stop every later call to the person: a cease block is written with them.
BLOCKING: dict[str, str] = {
    "cease_request": "the debtor asked not to be contacted (agent disposition)",
    "deceased": "the debtor is deceased (agent disposition)",
}
SETTABLE_STATES = ("ready", "paused", "logged_out")
MAX_CALLBACK_DAYS = 90

# The reason goes to Asterisk as the QueuePause Reason header: one line of printable text.
_STATE_BODY = object_schema(
    {
        "state": {"type": "string", "enum": list(SETTABLE_STATES)},
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$",  # (C1 and separators too)
        },
        "campaign": {**CODE, "description": "going ready: the campaign to take calls for"},
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
SELECT a.id, a.code, a.name, a.interface, a.active, u.username, s.state, s.reason,
       s.at AS state_at, c.code AS campaign
FROM agents a
LEFT JOIN users u ON u.id = a.user_id
LEFT JOIN campaigns c ON c.id = a.campaign_id
LEFT JOIN agent_current_states s ON s.agent_id = a.id
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


# -- the agent's queue membership in Asterisk ------------------------------------------------
# The PBX link of the application: set by web._desktop.desktop_extension (the service's AMI
# client, or None when AMI is disabled). Without it, states are only recorded.
AMI_LINK: web.AppKey[Callable[[], AmiClient | None]] = web.AppKey("puente_ami_link")
AMI_TIMEOUT_S = 5.0  # per action; app_queue answers these at once
LINK_DOWN = "the PBX link is down: try again in a moment"

# The campaigns an agent may go ready for: the active ones, except preview campaigns (their
# calls go to the agent's own queue, joined when the agent asks for a lead).
ACTIVE_CAMPAIGNS_SQL = """
SELECT id, code, name, queue_name FROM campaigns
WHERE state IN ('running', 'paused') AND mode <> 'preview'
ORDER BY code
"""


@dataclass(frozen=True)
class ActiveCampaign:
    """A campaign an agent may take calls for: running or paused, not in preview mode."""

    id: int
    code: str
    name: str
    queue: str


def _choices(active: Sequence[ActiveCampaign]) -> str:
    return ", ".join(f"{c.code} ({c.name})" for c in active)


def choose_campaign(
    active: Sequence[ActiveCampaign], *, named: str | None, stored: int | None, inbound: bool
) -> ActiveCampaign | None:
    """The campaign an agent going ready takes calls for (None: the inbound queue only).

    ``named``: the request's (it must be active: the caller explains a campaign that is not);
    else ``stored``, the agent's, while it is active; else the only active campaign. Raises
    :class:`Invalid` (on ``campaign``) naming the active campaigns when there are several and
    none is chosen, and when none is active and there is no ``inbound`` queue to go ready for.
    """
    if named is not None:
        found = next((c for c in active if c.code == named), None)
        if found is None:
            raise Invalid(f"campaign: {named!r} is not running or paused; choose one of: "
                          f"{_choices(active) or 'none is active'}", "campaign")  # fmt: skip
        return found
    found = next((c for c in active if c.id == stored), None)
    if found is not None:
        return found
    if len(active) == 1:
        return active[0]
    if active:
        raise Invalid("campaign: an agent takes calls for one campaign at a time; choose one "
                      f"of: {_choices(active)}", "campaign")  # fmt: skip
    if inbound:
        return None
    raise Invalid("campaign: no campaign is running or paused (outside preview mode), so there "
                  "are no calls to go ready for; preview leads are asked for with Next lead",
                  "campaign")  # fmt: skip


async def _named_campaign(
    conn: asyncpg.Connection, code: str, active: Sequence[ActiveCampaign]
) -> None:
    """Refuse (422) a named campaign the agent may not go ready for, saying why."""
    if any(c.code == code for c in active):
        return
    row = await conn.fetchrow("SELECT state, mode FROM campaigns WHERE code = $1", code)
    choose = f"choose one of: {_choices(active) or 'none is active'}"
    if row is None:
        raise Invalid(f"campaign: no campaign {code!r}; {choose}", "campaign")
    if row["mode"] == "preview":
        raise Invalid(f"campaign: {code!r} is in preview mode (its leads are asked for with "
                      f"Next lead, in the agent's own queue); {choose}", "campaign")  # fmt: skip
    raise Invalid(f"campaign: {code!r} is {row['state']}; {choose}", "campaign")


def queue_steps(
    m: QueueMember,
    before: str,
    after: str,
    queues: Sequence[str],
    *,
    reason: str | None = None,
    before_reason: str | None = None,
    own_queue: str | None = None,
    leave: Sequence[str] = (),
) -> list[QueueStep]:
    """The AMI actions that move the agent ``m`` from state ``before`` to ``after``.

    ``queues``: the queues the agent takes calls from (its campaign's, and the inbound queue);
    ``leave``: going ready, queues to leave first (the campaign it switches from); ``own_queue``:
    the agent's preview queue, also left on logout; ``reason``: the pause's; ``before_reason``:
    the pause being ended (put back if the change fails). Pausing a member of no queue is no
    error (``Interface not found``: nothing to pause, and going ready adds it). Going ready
    again from ``ready`` unpauses too: app_queue pauses a member who lets a call ring out
    (``autopause``). A switch leaves the old queue before the unpause, so that the old
    campaign's calls never reach the agent unpaused. ``ringing``, ``talking`` and ``wrapup`` are
    Asterisk's own doing: no action.
    """
    was_paused = before == "paused"
    if after == "paused":
        return [queue_pause(m, True, reason)]
    if after == "ready":
        steps = [queue_remove(m, q, paused=was_paused, reason=before_reason)
                 for q in leave if q not in queues]  # fmt: skip
        if before != "logged_out":
            back = queue_pause(m, True, before_reason) if was_paused else None
            steps.append(queue_pause(m, False, undo=back))
        return steps + [queue_add(m, q) for q in queues]
    if after == "logged_out":
        out = [*queues, own_queue] if own_queue and own_queue not in queues else list(queues)
        return [queue_remove(m, q, paused=was_paused, reason=before_reason) for q in out]
    return []


async def apply_queue_steps(
    client: AmiClient | None, steps: Sequence[QueueStep], *, field: str, agent: str
) -> list[str]:
    """Send ``steps`` in order; the ``what`` of each that changed something.

    Raises :class:`Invalid` (on ``field``) when the link is down, or Asterisk refuses a step or
    does not answer it; the steps done before it are taken back first (best effort). ``agent``
    (its code) names it in the log; its interface, possibly a phone number, is never logged.
    """
    if not steps:
        return []
    if client is None or not client.connected:
        raise Invalid(LINK_DOWN, field)
    done: list[QueueStep] = []
    try:
        for step in steps:
            if await _send(client, step, field, agent):
                done.append(step)
    except Invalid:
        await _take_back(client, done, agent)
        raise
    return [s.what for s in done]


async def _send(client: AmiClient, step: QueueStep, field: str, agent: str) -> bool:
    """True: Asterisk did it; False: it was so already."""
    try:
        result = await client.send_action(step.action, step.fields, timeout_s=AMI_TIMEOUT_S)
    except NotConnected:
        raise Invalid(LINK_DOWN, field) from None
    except ActionTimeout:
        raise Invalid(f"Asterisk did not answer the {step.what} in time: try again in a "
                      "moment", field) from None  # fmt: skip
    except ActionFateUnknown:
        raise Invalid(f"the PBX link was lost during the {step.what}: try again in a moment",
                      field) from None  # fmt: skip
    except PbxError as e:  # a header value Asterisk must not get (a CR or LF in a name)
        raise Invalid(f"the {step.what} cannot be sent: {e}", field) from None
    if result.ok:
        return True
    message = result.message or "no reason given"
    if message in step.already:
        return False
    log.warning("agent %s: Asterisk refused the %s: %s", agent, step.what, message)
    if message == NO_SUCH_QUEUE and step.queue is not None:
        raise Invalid(f"queue {step.queue} is not defined in Asterisk (queues.conf): Asterisk "
                      f"refused the {step.what}: {message}", field)  # fmt: skip
    raise Invalid(f"Asterisk refused the {step.what}: {message}", field)


async def _take_back(client: AmiClient, done: list[QueueStep], agent: str) -> None:
    for step in reversed(done):
        undo = step.undo
        if undo is None:
            continue
        try:
            result = await client.send_action(undo.action, undo.fields, timeout_s=AMI_TIMEOUT_S)
        except PbxError as e:
            failed = type(e).__name__
        else:
            if result.ok or result.message in undo.already:
                continue
            failed = result.message
        log.warning("agent %s: could not take back the %s (%s): %s", agent, step.what,
                    undo.what, failed)  # fmt: skip


def _agent_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "interface": row["interface"],
        "username": row["username"],
        "state": row["state"] or "logged_out",
        "reason": row["reason"],
        "state_at": row["state_at"],
        "campaign": row["campaign"],
        "active": row["active"],
    }


async def list_agents(call: ApiCall) -> Any:
    if call.user.is_agent and call.user.agent_id is None:
        return {"agents": []}
    only = call.user.agent_id if call.user.is_agent else None
    rows = await call.pool.fetch(
        _AGENTS + " WHERE ($1::bigint IS NULL OR a.id = $1) ORDER BY a.code", only
    )
    return {"agents": [_agent_json(r) for r in rows]}


def _takes_calls_from(
    campaign: ActiveCampaign | None, active: Sequence[ActiveCampaign], inbound: str
) -> list[str]:
    """The queues of an agent working ``campaign``: its queue, and the inbound queue unless that
    is another active campaign's (that campaign's pacer would count the agent as its own)."""
    queues = [campaign.queue] if campaign is not None else []
    others = {c.queue for c in active if c != campaign}
    if inbound and inbound not in queues:
        if inbound in others:
            log.warning("the inbound queue %s is also campaign %s's: not joined", inbound,
                        next(c.code for c in active if c.queue == inbound))  # fmt: skip
        else:
            queues.append(inbound)
    return queues


async def set_agent_state(call: ApiCall) -> Any:
    """The campaign (going ready: :func:`choose_campaign`), Asterisk's queues
    (:func:`queue_steps`), then the state row, the agent's campaign and the audit entry.

    No database connection is held while Asterisk answers (each step may take seconds when it
    stalls, and the pool is the dialer's too): the agent is read, Asterisk is told, then the
    rows are written in a short transaction. Two changes of one agent on this node (a double
    click, the agent and a supervisor) go one after the other; the dialer's leader puts the
    queues right from the rows if changes on two nodes ever crossed."""
    code = call.params["code"]
    state, reason = call.body["state"], call.body.get("reason")
    named = call.body.get("campaign")
    if reason is not None:
        # Asterisk trims a header's value: a reason of blanks paused the member with none,
        # while the desktop and the audit showed the blanks. What Asterisk keeps is recorded.
        reason = reason.strip()
        if state != "paused":
            raise Invalid("reason: only a pause has a reason", "reason")
    if state == "paused" and not reason:
        raise Invalid("reason: a pause needs a reason (not only blanks)", "reason")
    if named is not None and state != "ready":
        raise Invalid("campaign: a campaign is chosen when going ready", "campaign")
    link = call.app.get(AMI_LINK)
    inbound = call.settings.inbound_queue
    async with _agent_lock(code):
        async with call.pool.acquire() as conn:
            agent = await conn.fetchrow(
                "SELECT a.id, a.name, a.interface, a.active, a.campaign_id, c.queue_name"
                " FROM agents a LEFT JOIN campaigns c ON c.id = a.campaign_id WHERE a.code = $1",
                code,
            )
            if agent is None:
                raise NotFound(f"no agent {code!r}")
            if call.user.is_agent and agent["id"] != call.user.agent_id:
                raise Forbidden("an agent may only change its own state")
            if not agent["active"] and state != "logged_out":
                raise Conflict(f"state: agent {code!r} is inactive: an admin or a supervisor "
                               "reactivates it first", "state")  # fmt: skip
            active = [ActiveCampaign(r["id"], r["code"], r["name"], r["queue_name"])
                      for r in await conn.fetch(ACTIVE_CAMPAIGNS_SQL)]  # fmt: skip
            campaign: ActiveCampaign | None = None
            if state == "ready":
                if named is not None:
                    await _named_campaign(conn, named, active)
                campaign = choose_campaign(
                    active, named=named, stored=agent["campaign_id"], inbound=bool(inbound)
                )
            before = await conn.fetchrow(
                "SELECT state, reason FROM agent_current_states WHERE agent_id = $1",
                agent["id"],
            )
        changed: list[str] = []
        if link is not None:
            before_state = before["state"] if before else "logged_out"
            old_queue = agent["queue_name"]  # its campaign's, active or not
            leave: list[str] = []
            if state == "ready":
                queues = _takes_calls_from(campaign, active, inbound)
                switched = campaign is None or campaign.id != agent["campaign_id"]
                if old_queue and switched and before_state != "logged_out":
                    leave.append(old_queue)
            else:  # a pause pauses it everywhere; a logout leaves its campaign's and inbound
                queues = list(dict.fromkeys(q for q in (old_queue, inbound) if q))
            steps = queue_steps(
                QueueMember(agent["interface"], agent["name"]),
                before_state,
                state,
                queues,
                reason=reason,
                before_reason=before["reason"] if before else None,
                own_queue=preview_queue(code),
                leave=leave,
            )
            changed = await apply_queue_steps(link(), steps, field="state", agent=code)
        async with call.pool.acquire() as conn, conn.transaction():
            if state == "ready":
                await conn.execute(
                    "UPDATE agents SET campaign_id = $2 WHERE id = $1 AND campaign_id IS DISTINCT"
                    " FROM $2",
                    agent["id"],
                    campaign.id if campaign else None,
                )
            await conn.execute(
                "INSERT INTO agent_states (agent_id, state, reason, at) VALUES ($1, $2, $3, $4)",
                agent["id"],
                state,
                reason if state == "paused" else None,
                call.now(),
            )
            details: dict[str, Any] = {"state": state, "reason": reason}
            if state == "ready":
                details["campaign"] = campaign.code if campaign else None
            await audit(conn, call.user.username, "agent.state", f"agent:{code}", details)
            row = await conn.fetchrow(_AGENTS + " WHERE a.id = $1", agent["id"])
    log.info("agent %s %s%s%s", code, state,
             f" for campaign {campaign.code}" if campaign else "",
             "".join(f"; {w}" for w in changed))  # fmt: skip
    return _agent_json(row)


_AGENT_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@contextlib.asynccontextmanager
async def _agent_lock(code: str) -> AsyncIterator[None]:
    """One state change of agent ``code`` at a time on this node (kept while anyone holds it)."""
    lock = _AGENT_LOCKS.get(code)
    if lock is None:
        lock = _AGENT_LOCKS[code] = asyncio.Lock()
    async with lock:
        yield


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
    if callback_at is not None and b["code"] in NO_CALLBACK:
        raise Invalid(f"callback_at: no callback with {b['code']}: {NO_CALLBACK[b['code']]}",
                      "callback_at")  # fmt: skip
    if callback_at is not None and not now < callback_at <= now + timedelta(MAX_CALLBACK_DAYS):
        raise Invalid(f"callback_at: must be in the next {MAX_CALLBACK_DAYS} days",
                      "callback_at")  # fmt: skip
    async with call.pool.acquire() as conn, conn.transaction():
        attempt = await conn.fetchrow(
            "SELECT id, agent_id, person_id, debt_id, phone_id, lead_id FROM call_attempts"
            " WHERE id = $1",
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
                    lead_id=attempt["lead_id"],  # (ended by the call, usually: made due again)
                )
            except CallbackError as e:
                raise Invalid(f"callback_at: {e}", "callback_at") from None
        if b["code"] == "wrong_party" and attempt["phone_id"] is not None:
            await conn.execute(
                "UPDATE phone_numbers SET status = 'wrong_party' WHERE id = $1",
                attempt["phone_id"],
            )
        block_id = None
        if b["code"] in BLOCKING and attempt["person_id"] is not None:
            # The compliance gate denies every later dial to the person, from any campaign or
            # a new upload (ending the lead alone did not). Person-wide: if in doubt, do not
            # dial; a supervisor may revoke it (DELETE /blocks/{id}).
            block_id = await conn.fetchval(
                "INSERT INTO contact_blocks (kind, person_id, channel, source, reason,"
                " effective_at) VALUES ('cease', $1, 'all', $2, $3, $4) RETURNING id",
                attempt["person_id"],
                f"disposition:{call.user.username}",
                BLOCKING[b["code"]],
                now,
            )
        await audit(conn, call.user.username, "disposition.record", f"attempt:{attempt_id}",
                    {"code": b["code"], "callback_at": callback_at, "callback_id": callback_id,
                     "block_id": block_id,
                     "notes_chars": len(b.get("notes") or "")})  # fmt: skip
    return {
        "id": row["id"],
        "attempt_id": str(attempt_id),
        "code": b["code"],
        "right_party": DISPOSITIONS[b["code"]],
        "callback_at": callback_at,
        "callback_id": callback_id,
        "block_id": block_id,
        "at": row["at"],
    }


# -- agents rows: create and edit -------------------------------------------------------------
# One line of text (it goes to Asterisk as QueueAdd's MemberName header), not blank at either end
# (Asterisk trims a header's value, and the desktop would show what the queue does not).
ONE_LINE = r"^(?=\S)(?=.*\S$)[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$"
AGENT_NAME = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": ONE_LINE}
# A queue member interface as app_queue takes it (QueueAdd's Interface, queues.conf's member):
# Technology/resource, e.g. PJSIP/agent101 or Local/101@agents/n. No blanks, commas, pipes,
# ampersands or control characters: in a dialplan application's arguments or an AMI header
# they split the value, and the member Asterisk adds is another one than the row names.
INTERFACE = {
    "type": "string",
    "maxLength": 128,
    "pattern": r"^[A-Za-z][A-Za-z0-9_]{0,31}/[A-Za-z0-9_.:+=~@/-]{1,95}$",
    "description": "Asterisk queue member interface, Technology/resource (PJSIP/agent101)",
    "examples": ["PJSIP/agent101"],
}
AGENT_CREATE_BODY = object_schema(
    {"code": CODE, "name": AGENT_NAME, "interface": INTERFACE}, ("code", "name", "interface")
)
AGENT_EDIT_BODY = object_schema(
    {"name": AGENT_NAME, "interface": INTERFACE, "active": {"type": "boolean"}}
)


async def agent_rows(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every agent (its code, name, interface, user, state and campaign), by code."""
    return [_agent_json(r) for r in await conn.fetch(_AGENTS + " ORDER BY a.code")]


async def _interface_free(conn: asyncpg.Connection, interface: str, code: str) -> None:
    other = await conn.fetchval(
        "SELECT code FROM agents WHERE interface = $1 AND code <> $2", interface, code
    )
    if other is not None:
        raise Conflict(f"interface: agent {other!r} already has this interface (one queue "
                       "member is one agent)", "interface")  # fmt: skip


def _unique_violation(e: asyncpg.UniqueViolationError, code: str) -> Conflict:
    """A row written meanwhile by another request: which value is taken."""
    if "interface" in (e.constraint_name or ""):
        return Conflict("interface: another agent already has this interface", "interface")
    return Conflict(f"agent {code!r} already exists", "code")


async def add_agent(pool: asyncpg.Pool, values: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Create an agents row from ``values`` (:data:`AGENT_CREATE_BODY`); the agent as
    ``GET /agents`` shows it. :class:`Invalid` naming the field, :class:`Conflict` when the
    code or the interface is taken."""
    validate(AGENT_CREATE_BODY, values)
    code = values["code"]
    async with pool.acquire() as conn, conn.transaction():
        await _interface_free(conn, values["interface"], code)
        try:
            async with conn.transaction():  # (a savepoint: the violation is answered below)
                agent_id = await conn.fetchval(
                    "INSERT INTO agents (code, name, interface) VALUES ($1, $2, $3)"
                    " ON CONFLICT (code) DO NOTHING RETURNING id",
                    code,
                    values["name"],
                    values["interface"],
                )
        except asyncpg.UniqueViolationError as e:
            raise _unique_violation(e, code) from None
        if agent_id is None:
            raise Conflict(f"agent {code!r} already exists", "code")
        # (an interface may hold a remote agent's phone number: audited masked)
        await audit(conn, actor, "agent.create", f"agent:{code}",
                    {"values": {"name": values["name"],
                                "interface": mask_numbers_in(values["interface"])}})  # fmt: skip
        row = await conn.fetchrow(_AGENTS + " WHERE a.id = $1", agent_id)
    return _agent_json(row)


async def edit_agent(
    pool: asyncpg.Pool, code: str, changes: dict[str, Any], *, actor: str
) -> dict[str, Any]:
    """Change an agent's ``name``, ``interface`` and ``active`` (:data:`AGENT_EDIT_BODY`). The
    interface, and deactivating, only while the agent is logged out (:class:`Conflict` naming
    the field otherwise)."""
    validate(AGENT_EDIT_BODY, changes)
    if not changes:
        raise Invalid("body: nothing to change", "body")
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(
            "SELECT id, name, interface, active FROM agents WHERE code = $1 FOR UPDATE", code
        )
        if current is None:
            raise NotFound(f"no agent {code!r}")
        diff = {k: {"from": current[k], "to": v} for k, v in changes.items() if current[k] != v}
        if "interface" in diff or diff.get("active", {}).get("to") is False:
            state = await conn.fetchval(
                "SELECT state FROM agent_current_states WHERE agent_id = $1", current["id"]
            )
            if state not in (None, "logged_out"):
                if "interface" in diff:
                    raise Conflict(
                        f"interface: agent {code!r} is {state}: log it out first (Asterisk's "
                        "queues hold it under its current interface, and would keep that "
                        "member, counted free, with nobody behind it)",
                        "interface",
                    )
                raise Conflict(
                    f"active: agent {code!r} is {state}: log it out first (Asterisk's queues "
                    "would keep it, counted free, with nobody behind it)",
                    "active",
                )
            if "interface" in diff:
                await _interface_free(conn, changes["interface"], code)
        if diff:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "UPDATE agents SET name = $2, interface = $3, active = $4 WHERE id = $1",
                        current["id"],
                        changes.get("name", current["name"]),
                        changes.get("interface", current["interface"]),
                        changes.get("active", current["active"]),
                    )
            except asyncpg.UniqueViolationError as e:
                raise _unique_violation(e, code) from None
            if "interface" in diff:  # (masked, as at creation)
                diff["interface"] = {k: mask_numbers_in(v) for k, v in diff["interface"].items()}
            await audit(conn, actor, "agent.edit", f"agent:{code}", {"changes": diff})
        row = await conn.fetchrow(_AGENTS + " WHERE a.id = $1", current["id"])
    return _agent_json(row)


async def create_agent(call: ApiCall) -> Any:
    return await add_agent(call.pool, call.body, actor=call.user.username)


async def change_agent(call: ApiCall) -> Any:
    code = call.params["code"]
    async with _agent_lock(code):  # (not while a state change of it talks to Asterisk)
        return await edit_agent(call.pool, code, call.body, actor=call.user.username)


ROUTES = [
    ApiRoute("GET", "/agents", list_agents,
             "Agents and their current state (an agent: itself only)", "agents"),
    ApiRoute("POST", "/agents", create_agent,
             "Create an agent: its code, name and Asterisk queue member interface "
             "(409 when the code or the interface is taken)",
             "agents", MANAGERS, body=AGENT_CREATE_BODY, status=201, response="The agent"),
    ApiRoute("PATCH", "/agents/{code}", change_agent,
             "Change an agent's name, interface or active flag (the interface, and "
             "deactivating, only while it is logged out: 409 otherwise; an inactive agent "
             "cannot go ready or paused)",
             "agents", MANAGERS, params={"code": CODE}, body=AGENT_EDIT_BODY,
             response="The agent"),
    ApiRoute("POST", "/agents/{code}/state", set_agent_state,
             "Set an agent ready, paused (with a reason) or logged out (an agent: its own); "
             "its Asterisk queue membership first (422 when the PBX link is down or Asterisk "
             "refuses). Going ready takes calls for one campaign: the one named, else the "
             "agent's own while it is active, else the only active one (422 naming them "
             "when there are several)",
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
