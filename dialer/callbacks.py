"""Callbacks: a promise to call a debtor back at an agreed time (asked in the IVR, of an agent,
or through the API).

- :func:`schedule_callback` writes the callback and makes the debt's open leads due at its time
  (``ready``, ``next_try_at = due_at``), and the lead of the call that asked for it even when
  that call has ended it (an agent's disposition comes in wrap-up), in the caller's
  transaction. A lead that is in a call
  (or claimed) right now is left alone; when that call ends, the lead comes back due at the
  callback's time at the latest (the ``leads_callback_return`` trigger, migration 0004), even
  if an agent's call would have ended it.
- Selection claims a lead whose debt has a callback due before any other lead, dials the
  callback's number (while it is active) and marks the callback taken (:func:`take_callbacks`)
  in the transaction that writes the attempt. A callback still goes through the compliance
  gate: denied, it stays pending and its lead comes back when compliance allows.
- A callback is matched to leads by its debt: whichever campaign's lead calls the debt first
  keeps the promise.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from compliance import ComplianceGate

SOURCES = ("ivr", "agent", "api")


class CallbackError(ValueError):
    """A callback that cannot be written as asked; the message says which value is wrong."""


@dataclass(frozen=True)
class Callback:
    id: int
    lead_id: int | None
    person_id: int
    debt_id: int
    phone_id: int | None
    due_at: datetime
    source: str
    requested_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class DueCallback:
    """A debt's callbacks due now, as selection uses them: the number to dial (an active
    number of the earliest callback that names one; None: the rotation's) and every id it
    takes."""

    debt_id: int
    ids: tuple[int, ...]
    phone_id: int | None
    e164: str | None


# One statement: the debt must be the person's and the number too; the debt's open leads not
# in a call become due at the callback's time; the callback names the lead when there is one.
_SCHEDULE = """
WITH ok AS (
    SELECT d.id FROM debts d
    WHERE d.id = $1 AND d.person_id = $2
      AND ($3::bigint IS NULL
           OR EXISTS (SELECT 1 FROM phone_numbers n WHERE n.id = $3 AND n.person_id = $2))
), due AS (
    UPDATE leads l SET state = 'ready', next_try_at = $4
    FROM ok WHERE l.debt_id = ok.id
      AND (l.state IN ('ready', 'waiting') OR (l.id = $7 AND l.state IN ('done', 'cancelled')))
    RETURNING l.id
)
INSERT INTO callbacks (lead_id, person_id, debt_id, phone_id, due_at, source, requested_by)
SELECT (SELECT CASE WHEN count(*) = 1 THEN min(due.id) END FROM due), $2, ok.id, $3, $4, $5, $6
FROM ok
RETURNING id
"""
_PENDING = """
SELECT id, lead_id, person_id, debt_id, phone_id, due_at, source, requested_by, created_at
FROM callbacks
WHERE person_id = $1 AND done_at IS NULL AND cancelled_at IS NULL
ORDER BY due_at, id
"""
_CANCEL = """
UPDATE callbacks SET cancelled_at = $2
WHERE id = $1 AND done_at IS NULL AND cancelled_at IS NULL
"""
_DUE = """
SELECT c.debt_id,
       array_agg(c.id ORDER BY c.due_at, c.id) AS ids,
       (array_agg(n.id ORDER BY c.due_at, c.id) FILTER (WHERE n.id IS NOT NULL))[1] AS phone_id,
       (array_agg(n.e164 ORDER BY c.due_at, c.id) FILTER (WHERE n.id IS NOT NULL))[1] AS e164
FROM callbacks c
LEFT JOIN phone_numbers n
       ON n.id = c.phone_id AND n.person_id = c.person_id AND n.status = 'active'
WHERE c.debt_id = ANY($1::bigint[]) AND c.done_at IS NULL AND c.cancelled_at IS NULL
  AND c.due_at <= $2
GROUP BY c.debt_id
"""
_TAKE = """
UPDATE callbacks c SET done_at = $4, attempt_id = t.attempt_id, lead_id = t.lead_id
FROM unnest($1::bigint[], $2::uuid[], $3::bigint[]) AS t(id, attempt_id, lead_id)
WHERE c.id = t.id AND c.done_at IS NULL AND c.cancelled_at IS NULL
"""


async def schedule_callback(
    conn: asyncpg.Connection,
    *,
    debt_id: int,
    person_id: int,
    phone_id: int | None,
    due_at: datetime,
    source: str,
    requested_by: str | None = None,
    lead_id: int | None = None,
) -> int:
    """Promise a call back about ``debt_id`` at ``due_at``; the new callback's id.

    In the caller's transaction (run it in one with whatever asked for it: the IVR's session,
    the agent's disposition). Raises :class:`CallbackError` for an unknown source, a time
    without a zone, a debt that is not the person's or a number that is not theirs.

    ``lead_id``: the lead of the call that asked for it (an agent's disposition in wrap-up).
    That call's end has usually finished it already (``done``): it is made due again at the
    callback's time, else the callback would wait for a lead of its debt that never comes.
    """
    if source not in SOURCES:
        raise CallbackError(f"callback source must be one of {SOURCES}, got {source!r}")
    if due_at.tzinfo is None or due_at.utcoffset() is None:
        raise CallbackError(f"callback due_at must carry a time zone, got {due_at!r}")
    callback_id = await conn.fetchval(
        _SCHEDULE, debt_id, person_id, phone_id, due_at, source, requested_by, lead_id
    )
    if callback_id is None:
        what = f"debt {debt_id}" + (f" or number {phone_id}" if phone_id is not None else "")
        raise CallbackError(f"{what} is not person {person_id}'s")
    return callback_id


async def pending_callbacks(conn: asyncpg.Connection, person_id: int) -> list[Callback]:
    """The person's callbacks neither taken nor cancelled, earliest first."""
    return [Callback(**dict(r)) for r in await conn.fetch(_PENDING, person_id)]


async def cancel_callback(conn: asyncpg.Connection, callback_id: int, *, at: datetime) -> bool:
    """Cancel a pending callback; False when it was already taken or cancelled (or unknown).

    Its lead keeps the time it was given (it is called then as any other lead)."""
    return await conn.execute(_CANCEL, callback_id, at) == "UPDATE 1"


async def due_callbacks(
    conn: asyncpg.Connection, debt_ids: Sequence[int], now: datetime
) -> dict[int, DueCallback]:
    """The callbacks due at ``now`` of these debts, by debt (for selection)."""
    if not debt_ids:
        return {}
    rows = await conn.fetch(_DUE, list(debt_ids), now)
    return {
        r["debt_id"]: DueCallback(r["debt_id"], tuple(r["ids"]), r["phone_id"], r["e164"])
        for r in rows
    }


async def take_callbacks(
    conn: asyncpg.Connection,
    taken: Sequence[tuple[DueCallback, str, int]],
    now: datetime,
) -> None:
    """Mark callbacks taken by the attempts just written: ``(callbacks, attempt id, lead id)``.

    Call it in the transaction that wrote the attempts (``attempt_id`` references them). A
    callback cancelled meanwhile stays cancelled.
    """
    ids, attempts, leads = [], [], []
    for due, attempt_id, lead_id in taken:
        for callback_id in due.ids:
            ids.append(callback_id)
            attempts.append(uuid.UUID(attempt_id))
            leads.append(lead_id)
    if ids:
        await conn.execute(_TAKE, ids, attempts, leads, now)


# The compliance packs a callback time is checked against, by the debtor's country (a callback
# asked for on an inbound call or by an agent has no campaign to take them from).
PACKS_BY_COUNTRY: dict[str, tuple[str, ...]] = {
    "US": ("us_federal",),
    "MX": ("mx",),
    "CO": ("co",),
    "CL": ("cl",),
    "PE": ("pe",),
    "ES": ("es",),
}


async def allowed_times(
    gate: ComplianceGate,
    *,
    person_id: int,
    debt_id: int,
    phone: str,
    packs: Sequence[str],
    now: datetime,
    hours: Sequence[int] = (10, 17),
    days: int = 7,
    count: int = 2,
) -> list[tuple[datetime, datetime]]:
    """The next ``count`` times (at ``hours`` local, from tomorrow on) the compliance engine
    would allow a call: ``(UTC, local)`` pairs. The local zone is the first the engine
    resolves for the debtor; each time is checked in every candidate zone (what-if, nothing
    reserved)."""
    first = await gate.check(
        person_id=person_id, debt_ids=[debt_id], phone=phone, channel="voice", packs=packs,
        now=now,
    )  # fmt: skip
    if not first.timezones:
        return []
    zone = ZoneInfo(first.timezones[0])
    local_now = now.astimezone(zone)
    found: list[tuple[datetime, datetime]] = []
    for day in range(1, days + 1):
        d = local_now.date() + timedelta(days=day)
        for hour in hours:
            local = datetime.combine(d, time(hour), zone)
            at = local.astimezone(UTC)
            decision = await gate.check(
                person_id=person_id, debt_ids=[debt_id], phone=phone, channel="voice",
                packs=packs, now=at,
            )  # fmt: skip
            if decision.allowed:
                found.append((at, local))
                if len(found) == count:
                    return found
    return found
