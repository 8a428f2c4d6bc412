"""What an agent sees when a call connects: the screen pop, read in one round trip.

The call is found by the caller channel's Uniqueid: an outbound call's is its attempt id (the
Originate's ChannelId); an inbound or transferred call's is in ``ivr_sessions.uniqueid``.
The pop names the debtor, masks the account (last four), gives the balance and the creditor's
options (the same policy functions as the IVR), past attempts and promises, the IVR context
when the caller came through the IVR, and compliance notes (cease or do-not-call entries on
other channels, refused consents): what the agent must know before saying a word, and what
to say first (:func:`verify_first`; for a Mexican debtor of a creditor collected by an agency,
until a right-party contact is recorded, :func:`identify_first`).

Every part is found by an index (migration 0011), whatever plan PostgreSQL caches for the
prepared statement: the blocks by person, by debt and by the person's numbers (``= ANY`` of an
array, so the three make one bitmap scan; ``IN (SELECT ...)`` read every block).
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import asyncpg

from ivr import plans
from ivr._exceptions import PlanError, PolicyError
from web._agents import RIGHT_PARTY_CODES
from web._values import jsonb

_CALL = """
WITH att AS (
    SELECT a.id, a.debt_id, a.person_id, a.campaign_id, a.phone_id FROM call_attempts a
    WHERE a.id = $1::uuid
), ivr AS (
    SELECT s.id, s.attempt_id, s.debt_id, s.person_id, s.verified, s.outcome, s.trail,
           s.language, s.flow, s.entry
    FROM ivr_sessions s
    WHERE s.uniqueid = $2 OR s.attempt_id = $1::uuid
    ORDER BY s.started_at DESC LIMIT 1
), who AS (
    SELECT coalesce((SELECT debt_id FROM att), (SELECT debt_id FROM ivr)) AS debt_id
)
SELECT d.id AS debt_id, d.account_ref, d.balance_cents, d.currency, d.days_past_due, d.status,
       p.id AS person_id, p.full_name, p.language, p.country,
       c.code AS creditor, c.public_name, c.policy, c.name AS creditor_name, c.agency,
       EXISTS (SELECT 1 FROM call_attempts a JOIN dispositions x ON x.attempt_id = a.id
               WHERE a.debt_id = d.id AND a.state = 'final' AND x.code = ANY ($3::text[])
       ) AS reached_before,
       (SELECT code FROM campaigns WHERE id = (SELECT campaign_id FROM att)) AS campaign,
       (SELECT e164 FROM phone_numbers WHERE id = (SELECT phone_id FROM att)) AS number,
       (SELECT row_to_json(ivr) FROM ivr) AS ivr,
       (SELECT coalesce(json_agg(x ORDER BY x.created_at DESC), '[]') FROM (
            SELECT a.created_at, a.disposition, a.direction FROM call_attempts a
            WHERE a.debt_id = d.id AND a.state = 'final' ORDER BY a.created_at DESC LIMIT 10
        ) x) AS attempts,
       (SELECT coalesce(json_agg(x ORDER BY x.created_at DESC), '[]') FROM (
            SELECT pr.created_at, pr.status, pr.kind, pr.total_cents, pr.first_due, pr.last_due,
                   pr.source FROM promises pr
            WHERE pr.debt_id = d.id ORDER BY pr.created_at DESC LIMIT 10
        ) x) AS promises,
       (SELECT coalesce(json_agg(x), '[]') FROM (
            SELECT b.kind, b.channel, b.reason FROM contact_blocks b
            WHERE b.revoked_at IS NULL AND b.effective_at <= now()
              AND (b.person_id = p.id OR b.debt_id = d.id
                   OR b.e164 = ANY (ARRAY(SELECT e164 FROM phone_numbers WHERE person_id = p.id)))
        ) x) AS blocks,
       (SELECT coalesce(json_agg(x), '[]') FROM (
            SELECT DISTINCT ON (k.phone_id, k.channel) k.channel, k.granted, n.e164
            FROM consents k JOIN phone_numbers n ON n.id = k.phone_id
            WHERE n.person_id = p.id ORDER BY k.phone_id, k.channel, k.recorded_at DESC
        ) x) AS consents
FROM who JOIN debts d ON d.id = who.debt_id
JOIN persons p ON p.id = d.person_id
JOIN creditors c ON c.id = d.creditor_id
"""


def mask_account(account: str) -> str:
    """``****5678``: enough to confirm with the debtor, not to use elsewhere."""
    return "*" * max(0, min(len(account) - 4, 8)) + account[-4:]


def _notes(blocks: list[dict[str, Any]], consents: list[dict[str, Any]]) -> list[str]:
    notes = []
    for b in blocks:
        what = "cease requested" if b["kind"] == "cease" else "do not call"
        where = "all channels" if b["channel"] == "all" else b["channel"]
        notes.append(f"{what} for {where}" + (f" ({b['reason']})" if b.get("reason") else ""))
    for k in consents:
        if not k["granted"]:
            notes.append(f"no consent for {k['channel']} calls on a number ending {k['e164'][-4:]}")
    return notes


#: Where a collector owes the "debt collector" notice once the right party is on the line
#: (FDCPA 15 U.S.C. 1692e(11), Reg F 1006.18(e); "State" includes the territories, 1692a(8)).
_FDCPA_COUNTRIES = frozenset({"US", "PR", "GU", "VI", "AS", "MP"})


def verify_first(
    name: str, country: str | None, ivr_verified: bool, *, verified_elsewhere: bool = False
) -> str | None:
    """What the agent must do before a word about the account: whoever answered may not be
    the debtor (FDCPA 1692c(b), Reg F 1006.6(d); CONDUSEF, Ley 2300 de 2023 and the like).
    None when the IVR already verified the caller as this debtor; ``verified_elsewhere``: it
    verified them as another one."""
    if ivr_verified:
        return None
    text = (
        f"Verify you are speaking with {name} (a second factor: date of birth, postal code or "
        "ID digits) before discussing the account; tell nobody else anything about it."
    )
    if verified_elsewhere:
        text = f"The caller verified in the IVR as another debtor, not {name}. " + text
    if (country or "").strip().upper() in _FDCPA_COUNTRIES:
        text += " Then say you are a debt collector and that information obtained will be used"
        text += " for that purpose."
    return text


def identify_first(
    country: str | None, agency: dict[str, Any] | None, creditor: str, account: str
) -> str | None:
    """What a collection agency must say at its first contact with a Mexican debtor (CONDUSEF,
    rules for collection agencies: who is collecting and for whom, and on which contract); None
    when the debtor is not in Mexico or the creditor collects in-house (no ``agency``)."""
    if (country or "").strip().upper() != "MX" or not agency:
        return None
    return (
        f"First contact (CONDUSEF): once the debtor is verified, say who is calling: "
        f"{agency['name']}, your own name; address {agency['address']}; phone "
        f"{agency['phone']}, e-mail {agency['email']}; persons responsible: "
        f"{agency['responsible']}. Collecting for {creditor}, which granted the credit, on "
        f"contract {account}."
    )


def _offers(row: asyncpg.Record, today: date) -> tuple[list[dict[str, Any]], str | None]:
    raw = row["policy"]
    try:
        policy = plans.CreditorPolicy.from_json(
            json.loads(raw) if isinstance(raw, str) else (raw or {}), creditor=row["creditor"]
        )
        if row["balance_cents"] <= 0:
            return [], None
        return [o.to_json() for o in plans.offers(row["balance_cents"], policy, today)], None
    except (PolicyError, PlanError) as e:
        return [], str(e)


async def screen_pop(
    conn: asyncpg.Connection | asyncpg.Pool, uniqueid: str, today: date
) -> dict[str, Any] | None:
    """The pop for the call whose caller channel has ``uniqueid``; None when it is not ours."""
    try:
        attempt = str(uuid.UUID(uniqueid))
    except ValueError:
        attempt = "00000000-0000-0000-0000-000000000000"
    row = await conn.fetchrow(_CALL, attempt, uniqueid, list(RIGHT_PARTY_CODES))
    if row is None:
        return None
    offers, policy_problem = _offers(row, today)
    ivr = row["ivr"]
    ivr_context = None
    if ivr is not None:
        ivr = json.loads(ivr) if isinstance(ivr, str) else ivr
        trail = ivr.get("trail") or []
        # Verified counts for this debtor only: on a call to one debtor, whoever answered may
        # have verified in the IVR as another (another account of the creditor, their own
        # date of birth); the agent would be told not to verify and shown this debtor's debt.
        verified = bool(ivr["verified"]) and ivr.get("person_id") == row["person_id"]
        ivr_context = {
            "session": ivr["id"],
            "flow": ivr["flow"],
            "entry": ivr["entry"],
            "verified": verified,
            "verified_as_another_debtor": bool(ivr["verified"]) and not verified,
            "outcome": ivr["outcome"],
            "language": ivr["language"],
            "states": [t["state"] for t in trail][-12:],
        }
    number = row["number"]
    return {
        "type": "screen_pop",
        "attempt_id": attempt if row["campaign"] else None,
        "campaign": row["campaign"],
        "debtor": {
            "name": row["full_name"],
            "language": row["language"],
            "country": row["country"],
            "number": (number[:3] + "*" * (len(number) - 7) + number[-4:]) if number else None,
        },
        "debt": {
            "id": row["debt_id"],
            "creditor": row["public_name"],
            "account": mask_account(row["account_ref"]),
            "balance_cents": row["balance_cents"],
            "currency": row["currency"].strip(),
            "days_past_due": row["days_past_due"],
            "status": row["status"],
        },
        "options": offers,
        "policy_problem": policy_problem,
        "attempts": json.loads(row["attempts"]),
        "promises": json.loads(row["promises"]),
        "ivr": ivr_context,
        "compliance_notes": _notes(json.loads(row["blocks"]), json.loads(row["consents"])),
        "verify_first": verify_first(
            row["full_name"],
            row["country"],
            bool(ivr_context and ivr_context["verified"]),
            verified_elsewhere=bool(ivr_context and ivr_context["verified_as_another_debtor"]),
        ),
        "identify_first": None
        if row["reached_before"]
        else identify_first(
            row["country"],
            jsonb(row["agency"]),
            row["creditor_name"],
            mask_account(row["account_ref"]),
        ),
    }
