"""One attempt's final result, written once: the attempt, its lead and its ledger outcome.

One transaction, so a crash never leaves an attempt final without its lead rescheduled or its
ledger outcome (which releases the count for busy and dead numbers, and starts cooldowns). If
the attempt is already final (another node, or an earlier run of this one, wrote it; or this
write's commit answer was lost and it is retried), nothing changes.

A callback is kept only by an attempt that may have reached the debtor: one that ended
``failed`` or ``lost`` gives back the callbacks it took, and a lead the retry schedule would end
stays due while its debt has a callback pending (the lead trigger of migration 0004 does the
same for a lead an agent's call ends).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from compliance import ComplianceGate
from dialer.campaigns import NOT_DIALED, Campaign
from dialer.outcomes import (
    NUMBER_STATUS_AFTER,
    TONE_LEDGER_OUTCOME,
    Disposition,
    Outcome,
    sit_resolved,
)
from dialer.selection import Dial

# The ledger's outcome for a result not read from an unanswered dial's events. The others
# ('lost': ended while nobody listened; 'hangup') record none and keep counting as an
# attempt: the safe side.
ANSWERED_LEDGER = {
    # An agent took the call: a telephone conversation, which starts the packs' cooldowns
    # (Reg F: no call for 7 days after one; Colombia: one contact a day, one channel a week).
    # Whoever answered may have been someone else (the agent's disposition says so later):
    # the cooldown is kept all the same, the side that dials less.
    "agent": "conversation",
    "machine": "machine",
    "voicemail": "voicemail",  # a message was left (Reg F limited content)
    "abandoned": "abandoned",
    "failed": "not_placed",
    "skipped": "not_placed",  # preview: the agent passed before any dial
    # Answered by a fax or a special information tone (dialer/outcomes.py says why each).
    **TONE_LEDGER_OUTCOME,
}

_FINAL = """
UPDATE call_attempts SET state = 'final', disposition = $2,
       originate_reason = $3, hangup_cause = $4, dial_status = $5,
       amd_status = coalesce($6, call_attempts.amd_status),
       amd_cause = coalesce($10, call_attempts.amd_cause),
       answered_at = CASE WHEN $7 THEN coalesce(call_attempts.answered_at, $8::timestamptz) END,
       ended_at = $8, finalized_at = $8, abandoned = call_attempts.abandoned OR $9
FROM leads l
WHERE call_attempts.id = $1::uuid AND call_attempts.state <> 'final'
  AND l.id = call_attempts.lead_id
RETURNING l.attempts
"""
# Dispositions of an attempt never dialed: Asterisk refused or could not place it ('failed'), the
# trunk's own provider refused it ('trunk_refused': SIP 401/402/407), or a preview the agent
# passed on ('skipped'). Not a dial of the lead: it gives back the try its
# claim counted, else a trunk refusing every Originate for a while would use up each lead's
# ``max_attempts`` and cancel leads nobody ever called.
NOT_PLACED = frozenset({"failed", "skipped", "trunk_refused"})
_GIVE_BACK_TRY = """
UPDATE leads SET attempts = greatest(attempts - 1, 0) WHERE id = $1 RETURNING attempts
"""
# Dispositions of an attempt that never reached the debtor as far as anyone knows (the dials the
# hours' counts leave out): never placed ('failed', 'trunk_refused'), or ended while nobody
# listened ('lost': after a crash, or an AMI link lost, its Originate may never have left). A
# callback the attempt took is not kept by it.
UNKEPT_CALLBACK = frozenset(NOT_DIALED)
# Pending again: the callbacks the attempt $1 took (a callback cancelled since stays so).
_UNTAKE = """
UPDATE callbacks SET done_at = NULL, attempt_id = NULL
WHERE attempt_id = $1::uuid AND cancelled_at IS NULL
"""
# The earliest pending callback of debt $1 (None: none).
_PENDING_DUE = """
SELECT min(due_at) FROM callbacks
WHERE debt_id = $1 AND done_at IS NULL AND cancelled_at IS NULL
"""
# How the lead's previous dial of this number ($1 lead, $2 number, $3 this attempt) ended, and
# AMD's cause for it. (Dials never placed, $4: NOT_PLACED, are no dial of it.)
_SIT_BEFORE = """
SELECT a.disposition, a.amd_cause FROM call_attempts a
WHERE a.lead_id = $1 AND a.phone_id = $2 AND a.id <> $3::uuid AND a.state = 'final'
  AND a.disposition <> ALL($4::text[])
ORDER BY a.created_at DESC LIMIT 1
"""
_LEAD = """
UPDATE leads SET state = $2, next_try_at = coalesce($3, next_try_at),
       claimed_by = NULL, last_outcome = $4 WHERE id = $1
"""


async def write_result(
    pool: asyncpg.Pool,
    gate: ComplianceGate,
    campaign: Campaign,
    dial: Dial,
    disposition: str,
    outcome: Outcome | None,
    *,
    amd: str | None,
    answered: bool,
    now: datetime,
    abandoned: bool = False,
    agent_interface: str | None = None,
    amd_cause: str | None = None,
) -> bool:
    """Write the result; True if this call wrote it, False if it was already final.

    ``agent_interface``: the queue member that took the call. Written when the agent connects
    (:func:`assign_agent`); with the database away just then, the result writes it, else the
    call would name no agent, and its agent could not record the disposition on it.

    ``abandoned``: the live answer reached no agent in time, whatever came after (an agent
    reached from the safe-harbor menu makes the disposition ``agent``, not the call less
    abandoned); the ``abandoned`` disposition always is.

    ``amd_cause``: AMD's ``AMDCAUSE`` with its verdict, kept on the attempt (a fax or a special
    information tone decided the disposition: dialer/outcomes.py). A disposition that tells
    something of the number marks it (``NUMBER_STATUS_AFTER``), and so does a resolved
    ``sit_other`` right after another resolved SIT on it (``_SIT_BEFORE``)."""
    ledger = outcome.ledger_outcome if outcome is not None else ANSWERED_LEDGER.get(disposition)
    async with pool.acquire() as conn, conn.transaction():
        attempts = await conn.fetchval(
            _FINAL,
            dial.attempt_id,
            disposition,
            outcome.reason if outcome else None,
            outcome.cause if outcome else None,
            outcome.dial_status if outcome else None,
            amd,
            answered,
            now,
            abandoned or disposition == "abandoned",
            amd_cause,
        )
        if attempts is None:
            return False
        if agent_interface:
            await conn.execute(_AGENT, uuid.UUID(dial.attempt_id), agent_interface)
        number_status = NUMBER_STATUS_AFTER.get(disposition)
        retry_as = disposition
        if disposition == Disposition.SIT_OTHER and sit_resolved(amd_cause):
            before = await conn.fetchrow(
                _SIT_BEFORE, dial.lead_id, dial.phone_id, dial.attempt_id, sorted(NOT_PLACED)
            )
            if before is not None and (
                before["disposition"] == Disposition.INTERCEPT
                or (
                    before["disposition"] == Disposition.SIT_OTHER
                    and sit_resolved(before["amd_cause"])
                )
            ):
                # A second resolved special information tone in a row on the number, neither
                # telling congestion: taken as not in service (marked disconnected, the person's
                # next number tried as after an intercept). An unresolved one (``SIT-UNK``) is no
                # evidence: a machine whose greeting opens on a tone in a SIT band gives one
                # every time, and its number works. The ledger keeps counting it (no_answer):
                # one that was not a SIT at all must not free a dial.
                number_status, retry_as = "disconnected", Disposition.INTERCEPT.value
        if number_status is not None:
            await conn.execute(
                "UPDATE phone_numbers SET status = $2 WHERE id = $1", dial.phone_id, number_status
            )
        if disposition in UNKEPT_CALLBACK:  # before the lead's update: its trigger sees them
            await conn.execute(_UNTAKE, dial.attempt_id)
        if disposition in NOT_PLACED:
            attempts = await conn.fetchval(_GIVE_BACK_TRY, dial.lead_id)
        retry_s = campaign.retry.retry_after_s(retry_as, attempts)
        if disposition == "agent":
            state, when = "done", None  # (a pending callback brings it back: the lead trigger)
        elif retry_s is None:
            # The schedule says no more tries, but a callback the debtor asked for (during this
            # call, typically) still wants a lead of its debt: without one it would wait forever.
            due = await conn.fetchval(_PENDING_DUE, dial.debt_id)
            state, when = ("cancelled", None) if due is None else ("ready", due)
        else:
            state, when = "ready", now + timedelta(seconds=retry_s)
        await conn.execute(_LEAD, dial.lead_id, state, when, disposition)
        if ledger is not None:
            await gate.record_outcome(dial.attempt_id, ledger, now, conn=conn)
    return True


_AGENT = """
UPDATE call_attempts SET agent_id = (SELECT id FROM agents WHERE interface = $2),
       connected_at = coalesce(connected_at, now())
WHERE id = $1 AND agent_id IS NULL
"""


async def assign_agent(pool: asyncpg.Pool, attempt_id: str, interface: str) -> None:
    """The call reached the agent on queue interface ``interface``: it is theirs (their
    outcome and promises on it; reports). Idempotent."""
    await pool.execute(_AGENT, uuid.UUID(attempt_id), interface)
