"""From ready leads to dials the gate allowed: claim, pick a number, gate, record the intent.

1. **Claim** the campaign's best ready leads (``FOR UPDATE SKIP LOCKED``: several nodes never
   take the same lead): first those whose debt has a callback due (:mod:`dialer.callbacks`),
   whatever their priority; then the highest priority, then the longest waiting. A lead is
   only ever claimed once its ``next_try_at`` has come, callback or not.
   One call at a time to a person: a lead whose person has an attempt not yet final (in any
   campaign) is skipped, and of a person's leads claimed together only the best is kept.
2. **Pick a number** per lead: a due callback's number while it is active; otherwise the
   person's active number tried least recently (never tried first), so a debtor's numbers
   rotate.
3. **Gate** them together (:meth:`ComplianceGate.check_and_reserve_many`): an allowed dial is
   reserved in the ledger; a denied one goes back to ``ready`` at its ``next_allowed_at``
   (a hard block, e.g. cease or do-not-call, cancels the lead); its callbacks stay pending.
4. **Intend**: each allowed dial gets its ``call_attempts`` row (``originating``, id = the
   reservation's attempt id), its lead goes ``in_call`` and the callbacks it keeps are marked
   taken (``done_at``, ``attempt_id``), before any Originate is sent.

All four are one transaction (the gate's rounds are savepoints in it).

The claim reads the pending callbacks due by the partial index ``callbacks_pending_due_idx``
once per claim, on their own, and claims their leads by debt; the other leads by
``leads_ready_order_idx``, in the claim's order. So a claim's cost does not grow with the
campaign's ready leads, whatever plan PostgreSQL caches for the prepared statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from compliance import ComplianceGate, Decision, DialRequest
from compliance._types import SOFT_CODES
from dialer.callbacks import due_callbacks, take_callbacks

#: The debts with a pending callback due: one table, by its partial index (a small, hot set).
#: Read first and alone, so that when none is due (the usual case) no claim by callback runs;
#: joined to the leads in the claim, a generic plan walked every ready lead of the campaign
#: looking for a callback (asyncpg prepares statements, and after five executions PostgreSQL
#: may keep a plan made without the parameters' values: 20 ms at 30,000 leads, per claim).
_DUE_CALLBACK_DEBTS = """
SELECT coalesce(array_agg(DISTINCT c.debt_id), '{}') FROM callbacks c
WHERE c.done_at IS NULL AND c.cancelled_at IS NULL AND c.due_at <= $1
"""


def _claim_sql(callbacks: bool) -> str:
    """Claim up to $3 of the campaign's due leads, best first, skipping other nodes' claims.

    With ``callbacks``: only the leads of the debts in $5 (those with a callback due), found
    by the campaign's unique (campaign, debt) index, whatever their priority. Without: the
    rest, walking ``leads_ready_order_idx`` in the claim's order and stopping at $3 leads (a
    first claim has already taken its leads out of 'ready')."""
    debts = "AND p.debt_id = ANY($5::bigint[])" if callbacks else ""
    # The leads are picked (and locked) in a sub-select whose ids the UPDATE looks up by the
    # primary key: joined instead, a cached generic plan (LIMIT unknown, taken as a tenth of
    # the table) updated them through a sequential scan of every campaign's leads.
    return f"""
UPDATE leads l SET state = 'claimed', claimed_by = $4, claimed_at = $2
WHERE l.id = ANY(ARRAY(
    SELECT p.id FROM leads p
    WHERE p.campaign_id = $1 {debts} AND p.state = 'ready' AND p.next_try_at <= $2
      AND NOT EXISTS (SELECT 1 FROM call_attempts a
                      WHERE a.person_id = p.person_id AND a.state <> 'final')
    ORDER BY p.priority DESC, p.next_try_at, p.id
    LIMIT $3
    FOR UPDATE OF p SKIP LOCKED
))
RETURNING l.id, l.person_id, l.debt_id, l.priority, {str(callbacks).lower()} AS callback,
          (SELECT s.language FROM persons s WHERE s.id = l.person_id) AS language
"""


_CLAIM_CALLBACKS = _claim_sql(callbacks=True)
_CLAIM = _claim_sql(callbacks=False)
_RELEASE = """
UPDATE leads SET state = $2, next_try_at = coalesce($3, next_try_at), claimed_by = NULL,
                 claimed_at = NULL, last_outcome = $4
WHERE id = $1
"""
# The claimed leads' persons, under their compliance locks: busy (an attempt open), and the
# number to dial (migration 0026, one round trip).
_CLAIM_PERSONS = "SELECT * FROM claim_persons($1::bigint[])"
# Back to ready as they were: claimed with another lead of their person, or their person busy.
_UNCLAIM = """
UPDATE leads SET state = 'ready', claimed_by = NULL, claimed_at = NULL WHERE id = ANY($1::bigint[])
"""
_INTEND_MANY = """
INSERT INTO call_attempts (id, lead_id, campaign_id, person_id, debt_id, phone_id, node, pbx,
                           state)
SELECT a, l, $3, p, d, n, $7, $8, 'originating'
FROM unnest($1::uuid[], $2::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
     AS t(a, l, p, d, n)
"""


@dataclass(frozen=True)
class Dial:
    """A dial the gate allowed and the database recorded: send the Originate now."""

    attempt_id: str
    lead_id: int
    person_id: int
    debt_id: int
    phone_id: int
    e164: str
    language: str = ""  # the person's (the prompts and the voicemail); "": the campaign's


@dataclass(frozen=True)
class Denied:
    lead_id: int
    decision: Decision


async def claim_and_gate(
    pool: asyncpg.Pool,
    gate: ComplianceGate,
    *,
    campaign_id: int,
    campaign_code: str,
    packs: Sequence[str],
    want: int,
    node: str,
    pbx: str,
    now: datetime,
    retry_after_denial: timedelta = timedelta(hours=1),
    channel: str = "autodialed_voice",
) -> tuple[list[Dial], list[Denied]]:
    """Up to ``want`` dials for the campaign, each claimed, gated, reserved and recorded.

    One transaction from the claim to the intents: if the node dies on the way, or the
    database goes, nothing of it remains (no lead left claimed, no reservation without its
    attempt); once it commits, every dial returned has its ``originating`` attempt row.
    """
    if want <= 0:
        return [], []
    # READ COMMITTED whatever the server's default: the gate's ledger reads need it (its
    # snapshot refuses any other level, which would deny every dial).
    async with pool.acquire() as conn, conn.transaction(isolation="read_committed"):
        rows = []
        due_debts = await conn.fetchval(_DUE_CALLBACK_DEBTS, now)
        if due_debts:
            rows = await conn.fetch(_CLAIM_CALLBACKS, campaign_id, now, want, node, due_debts)
        if len(rows) < want:
            rows += await conn.fetch(_CLAIM, campaign_id, now, want - len(rows), node)
        rows.sort(key=lambda r: (not r["callback"], -r["priority"]))
        # One call at a time to a person. The claim skipped persons with an attempt open; under
        # their compliance locks (taken here, in id order, until the commit: a claim elsewhere
        # that dials one of them holds it until its attempt is written) that is checked again,
        # and of a person's leads claimed together only the best is kept. The others go back
        # to ready, untouched.
        persons = sorted({r["person_id"] for r in rows})
        found = await conn.fetch(_CLAIM_PERSONS, persons)
        busy = {r["person_id"] for r in found if r["busy"]}
        rotation = {
            r["person_id"]: (r["phone_id"], r["e164"]) for r in found if r["phone_id"] is not None
        }
        first: dict[int, asyncpg.Record] = {}
        for r in rows:
            if r["person_id"] not in busy:
                first.setdefault(r["person_id"], r)
        if len(first) < len(rows):
            kept = {r["id"] for r in first.values()}
            await conn.execute(_UNCLAIM, [r["id"] for r in rows if r["id"] not in kept])
            rows = list(first.values())
        if not rows:
            return [], []
        callbacks = await due_callbacks(conn, [r["debt_id"] for r in rows if r["callback"]], now)
        numbers: dict[int, tuple[int, str]] = {}  # lead -> (phone id, e164)
        leads = []
        for r in rows:
            cb = callbacks.get(r["debt_id"])
            if cb is not None and cb.phone_id is not None and cb.e164 is not None:
                numbers[r["id"]] = (cb.phone_id, cb.e164)
            elif r["person_id"] in rotation:
                numbers[r["id"]] = rotation[r["person_id"]]
            else:
                await conn.execute(_RELEASE, r["id"], "cancelled", None, "no_active_number")
                continue
            leads.append(r)
        requests = [
            DialRequest(
                person_id=r["person_id"],
                debt_ids=(r["debt_id"],),
                phone=numbers[r["id"]][0],
                attempt_id=uuid.uuid4(),
                channel=channel,
                campaign=campaign_code,
            )
            for r in leads
        ]
        decisions = await gate.check_and_reserve_many(requests, packs=packs, now=now, conn=conn)
        dials: list[Dial] = []
        denied: list[Denied] = []
        for r, req, d in zip(leads, requests, decisions, strict=True):
            if d.reserved:
                phone_id, e164 = numbers[r["id"]]
                attempt = str(req.attempt_id)
                dials.append(
                    Dial(attempt, r["id"], r["person_id"], r["debt_id"], phone_id, e164,
                         r["language"] or "")
                )  # fmt: skip
        if dials:  # every intent of the batch, before any Originate
            await conn.execute(
                _INTEND_MANY,
                [uuid.UUID(x.attempt_id) for x in dials],
                [x.lead_id for x in dials],
                campaign_id,
                [x.person_id for x in dials],
                [x.debt_id for x in dials],
                [x.phone_id for x in dials],
                node,
                pbx,
            )
            await conn.execute(
                "UPDATE leads SET state = 'in_call', attempts = attempts + 1 "
                "WHERE id = ANY($1::bigint[])",
                [x.lead_id for x in dials],
            )
            kept = [
                (callbacks[x.debt_id], x.attempt_id, x.lead_id)
                for x in dials
                if x.debt_id in callbacks
            ]
            await take_callbacks(conn, kept, now)
        for r, d in zip(leads, decisions, strict=True):
            if d.reserved:
                continue
            codes = set(d.codes)
            hard = any(code not in SOFT_CODES for code in codes)
            if "COMPLIANCE_UNAVAILABLE" in codes:  # try again soon: nothing was decided
                state, when = "ready", now + timedelta(minutes=1)
            elif codes == {"INVALID_NUMBER"}:  # that number is unusable, the person is not
                await conn.execute(
                    "UPDATE phone_numbers SET status = 'invalid' WHERE id = $1", numbers[r["id"]][0]
                )
                state, when = "ready", now
            elif hard:
                state, when = "cancelled", None
            else:
                state, when = "ready", d.next_allowed_at or now + retry_after_denial
            await conn.execute(_RELEASE, r["id"], state, when, d.codes[0] if d.codes else None)
            denied.append(Denied(r["id"], d))
        return dials, denied
