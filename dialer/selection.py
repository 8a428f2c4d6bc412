"""From ready leads to dials the gate allowed: claim, pick a number, gate, record the intent.

1. **Claim** the campaign's best ready leads (``FOR UPDATE SKIP LOCKED``: several nodes never
   take the same lead): first those whose debt has a callback due (:mod:`dialer.callbacks`),
   whatever their priority; then the highest priority, then the longest waiting. A lead is
   only ever claimed once its ``next_try_at`` has come, callback or not.
   One call at a time to a person: a lead whose person has an attempt not yet final (in any
   campaign) is skipped, and of a person's leads claimed together only the best is kept.
2. **Line up the numbers** per lead: a due callback's number while it is active, then the
   person's other active numbers in rotation order: tried least recently first (never tried
   first of all), so a debtor's numbers rotate (``claim_person_numbers``, migration 0031).
3. **Gate** each lead's first number, all leads together
   (:meth:`ComplianceGate.check_and_reserve_many`): an allowed dial is reserved in the ledger.
   A denial only for reasons tied to *that number* (:func:`number_level`: a do-not-call entry
   on the number, no consent for it on this channel, the number invalid or not the debtor's,
   its time zones outside the calling window or on a holiday, a cap on its kind of number)
   sends the lead to another gate round, in the same claim, on its next number; so a number
   that is blocked (and so never reserved, and so first in the rotation) never starves the
   others. At most one reservation per lead per claim: a lead goes to another round only when
   its number was not reserved, and the reservation is for the number dialed.
   A lead none of whose numbers is allowed:

   - a denial about the person (cease, a do-not-call entry on the person or the debt, a
     cooldown, an unusable time zone, any reason not known to be the number's) ends the tries:
     a hard one cancels the lead (the first code as its outcome), a soft one sends it back to
     ``ready`` at the earliest ``next_allowed_at`` of its soft denials; ``COMPLIANCE_UNAVAILABLE``
     (nothing decided) brings it back in a minute;
   - every number denied for its own reasons: back to ``ready`` at the earliest
     ``next_allowed_at`` of the numbers only softly denied; if every one is hard-blocked, the
     lead is cancelled (``no_callable_number``); with no active number at all,
     ``no_active_number``.

   Its callbacks stay pending. A number found invalid is marked so.
4. **Intend**: each allowed dial gets its ``call_attempts`` row (``originating``, id = the
   reservation's attempt id), its lead goes ``in_call`` and the callbacks it keeps are marked
   taken (``done_at``, ``attempt_id``), before any Originate is sent.

A campaign whose trunk is shared (:mod:`dialer.trunks`) first locks the trunk's row and claims
no more leads than the channels its campaigns leave free.

All four are one transaction (the gate's rounds are savepoints in it). The persons' compliance
locks are held from step 1 to the commit, so the blocks and consents the rounds see do not
change between two numbers of one person.

The claim reads the pending callbacks due by the partial index ``callbacks_pending_due_idx``
once per claim, on their own, and claims their leads by debt; the other leads by
``leads_ready_order_idx``, in the claim's order; the persons' numbers by person. So a claim's
cost does not grow with the campaign's ready leads, whatever plan PostgreSQL caches for the
prepared statements. Extra gate rounds happen only for persons with a number denied for its
own reasons, at most one per number of theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from compliance import Code, ComplianceGate, Decision, DialRequest, Reason
from compliance._zones import zone as zone_info
from dialer.callbacks import due_callbacks, take_callbacks
from dialer.trunks import TrunkFull, room_on_trunk

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
      -- (a debt paid or closed is not dialed: migration 0037 cancels its leads, and this
      -- skips one a call's result made ready again after the debt was paid during it)
      AND NOT EXISTS (SELECT 1 FROM debts d
                      WHERE d.id = p.debt_id AND d.status IN ('paid', 'closed'))
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
# The claimed leads' persons, under their compliance locks: busy (an attempt open), and their
# active numbers in rotation order (migration 0031, one round trip).
_CLAIM_PERSONS = "SELECT * FROM claim_person_numbers($1::bigint[])"
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


#: Hard codes that are always about the number dialed, never the person: the number is
#: invalid, reaches someone else or is not this person's (any more), or this channel to it
#: needs a consent the number does not have (consent is per number and channel).
_NUMBER_HARD = frozenset(
    {Code.INVALID_NUMBER, Code.WRONG_PARTY, Code.UNKNOWN_NUMBER, Code.NO_CONSENT}
)
#: Soft codes whose answer depends on the number: a number's candidate time zones come from
#: its prefix as well as the address (calling windows, holidays), and caps may count by kind of
#: number. Cooldowns and channel locks follow a contact with the person: person-wide.
_NUMBER_SOFT = frozenset({Code.OUTSIDE_WINDOW, Code.HOLIDAY, Code.CAP_REACHED})


def number_level(reason: Reason, e164: str) -> bool:
    """Whether ``reason`` denies the dial to ``e164`` only: another number of the person may
    be allowed. When not sure, False (the reason is the person's: no other number is tried).

    A do-not-call entry is the number's when it was made on that E.164 (the core marks such a
    reason ``on_number``; one on the person or a debt is theirs); a cease is always the
    person's (a request to stop communicating, whatever the number it came through)."""
    if reason.code in _NUMBER_HARD or reason.code in _NUMBER_SOFT:
        return True
    if reason.code == Code.DNC:
        return reason.on_number  # (a block on the person or a debt: theirs)
    return False


def number_only(decision: Decision, e164: str) -> bool:
    """A denial of ``e164`` for reasons tied to that number alone (so: try the next one)."""
    return (
        not decision.allowed
        and bool(decision.reasons)
        and all(number_level(r, e164) for r in decision.reasons)
    )


@dataclass(frozen=True)
class LeadSettled:
    """What becomes of a lead none of whose numbers the gate allowed in this claim."""

    state: str  # 'ready' or 'cancelled'
    next_try_at: datetime | None  # None: unchanged (a cancelled lead)
    outcome: str | None  # the lead's last_outcome
    decision: Decision  # the one reported (Denied)


def settle_denied(
    tries: Sequence[tuple[str, Decision]],
    *,
    now: datetime,
    retry_after_denial: timedelta,
) -> LeadSettled:
    """The lead's fate from its numbers' denials, ``(e164, decision)`` in the order tried (pure).

    The last one either had a reason that is not its number's alone, which ends the tries (a
    hard one cancels the lead; a soft one, e.g. a cooldown, makes it wait), or every number was
    tried. Waiting is until the earliest instant one of the numbers may be called: a number only
    softly denied at its ``next_allowed_at``; the last one, also hard-blocked itself while the
    person rests, when the person's soft reasons end (``retry_after_denial`` when the gate gave
    no time). A number hard-blocked for its own reasons never makes the lead wait for it; with
    nothing left to wait for, the lead is cancelled (``no_callable_number``).
    """
    if not tries:
        raise ValueError("a lead settles on at least one decision")
    e164, last = tries[-1]
    if "COMPLIANCE_UNAVAILABLE" in last.codes:  # try again soon: nothing was decided
        return LeadSettled("ready", now + timedelta(minutes=1), last.codes[0], last)
    person = [r for r in last.reasons if not number_level(r, e164)]
    if any(r.hard for r in person):  # cease, a do-not-call entry on the person...: as ever
        return LeadSettled("cancelled", None, last.codes[0], last)
    later = now + retry_after_denial
    waits: list[tuple[datetime, str, Decision]] = []
    for _, d in tries:
        if d.reasons and not any(r.hard for r in d.reasons):
            waits.append((d.next_allowed_at or later, d.codes[0], d))
    if person and any(r.hard for r in last.reasons):  # the number blocked, the person resting
        untils = [r.until for r in person]
        until = max(t for t in untils if t is not None) if all(untils) else later
        waits.append((until, str(person[0].code), last))
    if not waits:  # every number hard-blocked for its own reasons
        return LeadSettled("cancelled", None, "no_callable_number", tries[0][1])
    when, outcome, decision = min(waits, key=lambda w: w[0])
    return LeadSettled("ready", when, outcome, decision)


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
    # The zone whose local hour the gate held the dial to first (its calling hours), for the
    # pacer's odds of a live answer by hour; None: unknown.
    zone: str | None = None


def local_hour(zone: str | None, at: datetime) -> int | None:
    """The hour (0-23) at ``at`` in ``zone``; None for no zone or one the system lacks."""
    tz = zone_info(zone) if zone else None
    return None if tz is None else at.astimezone(tz).hour


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
    trunk: str | None = None,
    margin_s: float | None = None,
) -> tuple[list[Dial], list[Denied]]:
    """Up to ``want`` dials for the campaign, each claimed, gated, reserved and recorded.

    With ``trunk`` (the campaign's) given channels (:mod:`dialer.trunks`), no more than the
    channels left on it, counted over every campaign on the trunk under its row's lock, held
    to the commit; none left raises :class:`~dialer.trunks.TrunkFull` (nothing claimed).

    One transaction from the claim to the intents: if the node dies on the way, or the
    database goes, nothing of it remains (no lead left claimed, no reservation without its
    attempt); once it commits, every dial returned has its ``originating`` attempt row.
    """
    if want <= 0:
        return [], []
    # READ COMMITTED whatever the server's default: the gate's ledger reads need it (its
    # snapshot refuses any other level, which would deny every dial).
    async with pool.acquire() as conn, conn.transaction(isolation="read_committed"):
        if trunk is not None:
            room = await room_on_trunk(conn, trunk)
            if room is not None:
                in_use, channels = room
                if in_use >= channels:
                    raise TrunkFull(trunk, in_use, channels)
                want = min(want, channels - in_use)
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
        rotation: dict[int, list[tuple[int, str]]] = {
            r["person_id"]: list(zip(r["phone_ids"], r["e164s"], strict=True)) for r in found
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
        # Each lead's numbers in the order to try them: a due callback's (active) number first,
        # then the person's rotation.
        numbers: dict[int, list[tuple[int, str]]] = {}  # lead -> [(phone id, e164)]
        leads: list[asyncpg.Record] = []
        for r in rows:
            line = list(rotation.get(r["person_id"], ()))
            cb = callbacks.get(r["debt_id"])
            if cb is not None and cb.phone_id is not None and cb.e164 is not None:
                line = [(cb.phone_id, cb.e164)] + [n for n in line if n[0] != cb.phone_id]
            if not line:
                await conn.execute(_RELEASE, r["id"], "cancelled", None, "no_active_number")
                continue
            numbers[r["id"]] = line
            leads.append(r)
        # Gate rounds: each lead's next number while its last one was denied for that number's
        # reasons alone. A lead is in a round only if none of its numbers was reserved: at
        # most one reservation per lead.
        # lead -> request, number, its decision
        reserved: dict[int, tuple[DialRequest, tuple[int, str], Decision]] = {}
        tries: dict[int, list[tuple[str, Decision]]] = {r["id"]: [] for r in leads}
        todo = list(leads)
        while todo:
            requests = [
                DialRequest(
                    person_id=r["person_id"],
                    debt_ids=(r["debt_id"],),
                    phone=numbers[r["id"]][len(tries[r["id"]])][0],
                    attempt_id=uuid.uuid4(),
                    channel=channel,
                    campaign=campaign_code,
                )
                for r in todo
            ]
            decisions = await gate.check_and_reserve_many(
                requests, packs=packs, now=now, margin_s=margin_s, conn=conn
            )
            again = []
            for r, req, d in zip(todo, requests, decisions, strict=True):
                number = numbers[r["id"]][len(tries[r["id"]])]
                if d.reserved:
                    reserved[r["id"]] = (req, number, d)
                    continue
                tries[r["id"]].append((number[1], d))
                if set(d.codes) == {"INVALID_NUMBER"}:  # that number is unusable, not the person
                    # (one marked meanwhile, e.g. disconnected or fax, keeps what it says)
                    await conn.execute(
                        "UPDATE phone_numbers SET status = 'invalid'"
                        " WHERE id = $1 AND status = 'active'",
                        number[0],
                    )
                if number_only(d, number[1]) and len(tries[r["id"]]) < len(numbers[r["id"]]):
                    again.append(r)
            todo = again
        dials: list[Dial] = []
        for r in leads:  # in the claim's order
            if r["id"] in reserved:
                req, (phone_id, e164), d = reserved[r["id"]]
                dials.append(
                    Dial(str(req.attempt_id), r["id"], r["person_id"], r["debt_id"], phone_id,
                         e164, r["language"] or "", d.timezones[0] if d.timezones else None)
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
        denied: list[Denied] = []
        for r in leads:
            if r["id"] in reserved:
                continue
            fate = settle_denied(tries[r["id"]], now=now, retry_after_denial=retry_after_denial)
            await conn.execute(_RELEASE, r["id"], fate.state, fate.next_try_at, fate.outcome)
            denied.append(Denied(r["id"], fate.decision))
        return dials, denied
