"""A person's numbers in one claim: a number denied for its own reasons gives way to the next.

On the real database, as in ``test_selection``; each test builds its own campaign and debtors.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta

import pytest

from compliance import (
    Block,
    Code,
    ComplianceGate,
    Contact,
    Decision,
    History,
    PhoneNumber,
    Reason,
    decide,
    load_rules,
)
from dialer.callbacks import schedule_callback
from dialer.selection import claim_and_gate, number_level, settle_denied
from tests._plans import generic_plan, scans
from tests.dialer._floor import NOON

# NOON is 12:00 in Mexico City (no DST there); the mx pack's window is 07:00-22:00.
MX_2130 = NOON + timedelta(hours=9, minutes=30)  # 22:30 in Cancun (an hour ahead)
MX_2230 = NOON + timedelta(hours=10, minutes=30)  # shut everywhere in Mexico
MX_0700 = NOON + timedelta(hours=19)  # the next morning


def _digits(n: int) -> str:
    return f"{int.from_bytes(os.urandom(4), 'big') % 10**n:0{n}d}"


def mexico_city() -> str:
    return f"+5255{_digits(8)}"


def cancun() -> str:
    return f"+52998{_digits(7)}"


def tijuana() -> str:
    return f"+52664{_digits(7)}"


def chicago() -> str:
    return f"+1312{2 + int(_digits(1)) % 8}{_digits(6)}"


async def make_campaign(db_pool, packs: list[str]) -> tuple[int, str, int]:
    code = f"n{os.urandom(4).hex()}"
    creditor = await db_pool.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number, currency)
           VALUES ($1, 'Acme', 'Acme', '+525500000000', 'MXN') RETURNING id""",
        code,
    )
    cid = await db_pool.fetchval(
        "INSERT INTO campaigns (code, name, creditor_id, compliance_packs) "
        "VALUES ($1, 'Numbers', $2, $3) RETURNING id",
        code,
        creditor,
        packs,
    )
    return cid, code, creditor


async def debtor(
    db_pool,
    campaign: tuple[int, str, int],
    numbers: list[tuple[str, str]],
    *,
    country: str = "MX",
    region: str = "CMX",
    priority: int = 0,
) -> tuple[int, int, list[int]]:
    """A person with one debt and its lead, and their numbers ``(e164, kind)`` in the order
    given (the rotation's order while none was tried): (person, lead, phone ids)."""
    cid, code, creditor = campaign
    person = await db_pool.fetchval(
        "INSERT INTO persons (full_name, country, region) VALUES ('Deudor', $1, $2) RETURNING id",
        country,
        region,
    )
    debt = await db_pool.fetchval(
        """INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)
           VALUES ($1, $2, $3, 10000, 'MXN') RETURNING id""",
        person,
        creditor,
        f"{code}-{person}",
    )
    lead = await db_pool.fetchval(
        "INSERT INTO leads (campaign_id, person_id, debt_id, priority) VALUES ($1, $2, $3, $4) "
        "RETURNING id",
        cid,
        person,
        debt,
        priority,
    )
    ids = []
    for e164, kind in numbers:
        ids.append(
            await db_pool.fetchval(
                "INSERT INTO phone_numbers (person_id, e164, kind) VALUES ($1, $2, $3) "
                "RETURNING id",
                person,
                e164,
                kind,
            )
        )
    return person, lead, ids


async def block(db_pool, kind: str, *, e164: str | None = None, person: int | None = None):
    await db_pool.execute(
        "INSERT INTO contact_blocks (kind, e164, person_id, source, reason, effective_at) "
        "VALUES ($1, $2, $3, 'debtor', 'asked', $4)",
        kind,
        e164,
        person,
        NOON - timedelta(days=1),
    )


async def claim(db_pool, campaign, packs: list[str], *, now=NOON, want: int = 5, **kw):
    cid, code, _ = campaign
    return await claim_and_gate(
        db_pool, ComplianceGate(db_pool), campaign_id=cid, campaign_code=code, packs=packs,
        want=want, node="n1", pbx="sim", now=now, **kw,
    )  # fmt: skip


async def lead_row(db_pool, lead: int):
    return await db_pool.fetchrow(
        "SELECT state, next_try_at, last_outcome, attempts, claimed_by FROM leads WHERE id = $1",
        lead,
    )


async def decisions(db_pool, person: int) -> list[tuple[int, bool, list[str]]]:
    """The gate's stored decisions for the person, oldest first: (phone id, reserved, codes)."""
    rows = await db_pool.fetch(
        "SELECT phone_id, reserved, reasons FROM compliance_decisions WHERE person_id = $1 "
        "ORDER BY id",
        person,
    )
    out = []
    for r in rows:
        reasons = json.loads(r["reasons"]) if isinstance(r["reasons"], str) else r["reasons"]
        out.append((r["phone_id"], r["reserved"], [x["code"] for x in reasons]))
    return out


async def ledger(db_pool, person: int) -> list[tuple[str, int]]:
    rows = await db_pool.fetch(
        "SELECT attempt_id::text, phone_id FROM compliance_attempts WHERE person_id = $1",
        person,
    )
    return [(r["attempt_id"], r["phone_id"]) for r in rows]


async def test_a_number_on_do_not_call_gives_way_to_the_persons_other_number(db_pool) -> None:
    c = await make_campaign(db_pool, ["mx"])
    blocked, clean = mexico_city(), mexico_city()
    person, lead, (blocked_id, clean_id) = await debtor(
        db_pool, c, [(blocked, "mobile"), (clean, "mobile")]
    )
    await block(db_pool, "dnc", e164=blocked)  # the debtor asked: not on that number
    dials, denied = await claim(db_pool, c, ["mx"])
    # The rotation's first number (never tried, oldest) is denied; the same claim dials the other.
    (dial,) = dials
    assert denied == []
    assert (dial.lead_id, dial.phone_id, dial.e164) == (lead, clean_id, clean)
    row = await lead_row(db_pool, lead)
    assert (row["state"], row["attempts"]) == ("in_call", 1)  # not cancelled
    assert (
        await db_pool.fetchval(
            "SELECT phone_id FROM call_attempts WHERE id = $1::uuid", dial.attempt_id
        )
        == clean_id
    )
    # The ledger holds one reservation, for the number dialed, under the attempt's id; the
    # denial of the blocked number is on record and reserved nothing.
    assert await ledger(db_pool, person) == [(dial.attempt_id, clean_id)]
    assert await decisions(db_pool, person) == [(blocked_id, False, ["DNC"]), (clean_id, True, [])]


async def test_a_number_outside_its_window_does_not_starve_the_other(db_pool) -> None:
    c = await make_campaign(db_pool, ["mx"])
    late, now_ok = cancun(), mexico_city()
    person, lead, (late_id, ok_id) = await debtor(
        db_pool, c, [(late, "mobile"), (now_ok, "mobile")]
    )
    # 21:30 in Mexico City, where the debtor lives: 22:30 where the first number rings.
    dials, denied = await claim(db_pool, c, ["mx"], now=MX_2130)
    (dial,) = dials
    assert denied == []
    assert (dial.lead_id, dial.phone_id) == (lead, ok_id)
    assert (await lead_row(db_pool, lead))["state"] == "in_call"
    assert await ledger(db_pool, person) == [(dial.attempt_id, ok_id)]
    assert await decisions(db_pool, person) == [
        (late_id, False, ["OUTSIDE_WINDOW"]),
        (ok_id, True, []),
    ]


async def test_every_number_softly_denied_the_lead_waits_for_the_earliest(db_pool) -> None:
    c = await make_campaign(db_pool, ["mx"])
    person, lead, (tj_id, mx_id) = await debtor(
        db_pool, c, [(tijuana(), "mobile"), (mexico_city(), "mobile")]
    )
    # 22:30 in Mexico City: the Tijuana number may ring when it is 07:00 in Tijuana too (an
    # hour or two after Mexico City), the other one at 07:00 in Mexico City.
    dials, (d,) = await claim(db_pool, c, ["mx"], now=MX_2230)
    assert dials == []
    assert d.lead_id == lead
    assert d.decision.next_allowed_at == MX_0700
    row = await lead_row(db_pool, lead)
    assert (row["state"], row["next_try_at"], row["last_outcome"]) == (
        "ready", MX_0700, "OUTSIDE_WINDOW",
    )  # fmt: skip
    assert [(p, r) for p, r, _ in await decisions(db_pool, person)] == [
        (tj_id, False),
        (mx_id, False),
    ]
    assert await ledger(db_pool, person) == []
    (dial,), _ = await claim(db_pool, c, ["mx"], now=MX_0700)
    assert (dial.lead_id, dial.phone_id) == (lead, mx_id)


async def test_a_blocked_number_and_one_outside_its_window_the_lead_waits(db_pool) -> None:
    c = await make_campaign(db_pool, ["mx"])
    blocked = mexico_city()
    person, lead, _ = await debtor(db_pool, c, [(blocked, "mobile"), (mexico_city(), "mobile")])
    await block(db_pool, "dnc", e164=blocked)
    dials, (d,) = await claim(db_pool, c, ["mx"], now=MX_2230)
    assert dials == []
    row = await lead_row(db_pool, lead)
    # Not cancelled: the other number may be called in the morning.
    assert (row["state"], row["next_try_at"]) == ("ready", MX_0700)
    assert d.decision.next_allowed_at == MX_0700
    assert await ledger(db_pool, person) == []


async def test_a_person_whose_numbers_are_all_blocked_is_cancelled_with_the_reason(
    db_pool,
) -> None:
    # In the US (TCPA): an autodialed call to a mobile needs its consent; the other number is
    # on the do-not-call list. Both are the numbers' reasons: each is tried, then the lead ends.
    c = await make_campaign(db_pool, ["us_federal"])
    mobile, listed = chicago(), chicago()
    person, lead, (mobile_id, listed_id) = await debtor(
        db_pool, c, [(mobile, "mobile"), (listed, "landline")], country="US", region="IL"
    )
    await block(db_pool, "dnc", e164=listed)
    dials, (d,) = await claim(db_pool, c, ["us_federal"], channel="autodialed_voice")
    assert dials == []
    assert d.lead_id == lead
    assert d.decision.codes == ("NO_CONSENT",)  # the first number's denial
    row = await lead_row(db_pool, lead)
    assert (row["state"], row["last_outcome"], row["claimed_by"]) == (
        "cancelled", "no_callable_number", None,
    )  # fmt: skip
    assert await decisions(db_pool, person) == [
        (mobile_id, False, ["NO_CONSENT"]),
        (listed_id, False, ["DNC"]),
    ]
    assert await ledger(db_pool, person) == []


async def test_a_mobile_without_consent_gives_way_to_the_landline(db_pool) -> None:
    c = await make_campaign(db_pool, ["us_federal"])
    person, lead, (mobile_id, landline_id) = await debtor(
        db_pool, c, [(chicago(), "mobile"), (chicago(), "landline")], country="US", region="IL"
    )
    (dial,), denied = await claim(db_pool, c, ["us_federal"], channel="autodialed_voice")
    assert denied == []
    assert (dial.lead_id, dial.phone_id) == (lead, landline_id)
    assert await ledger(db_pool, person) == [(dial.attempt_id, landline_id)]
    assert [(p, r) for p, r, _ in await decisions(db_pool, person)] == [
        (mobile_id, False),
        (landline_id, True),
    ]


async def test_a_cease_on_the_person_cancels_without_trying_other_numbers(db_pool) -> None:
    # Two debtors claimed together, two numbers each, the first number of each blocked: one by
    # a do-not-call entry on that number (the next is dialed), the other by the person's cease
    # (person-wide: the lead ends as before, the second number is never put to the gate).
    c = await make_campaign(db_pool, ["mx"])
    listed = mexico_city()
    listed_person, listed_lead, (_, other_id) = await debtor(
        db_pool, c, [(listed, "mobile"), (mexico_city(), "mobile")], priority=1
    )
    await block(db_pool, "dnc", e164=listed)
    ceased, ceased_lead, (first_id, _) = await debtor(
        db_pool, c, [(mexico_city(), "mobile"), (mexico_city(), "mobile")]
    )
    await block(db_pool, "cease", person=ceased)
    dials, denied = await claim(db_pool, c, ["mx"])
    assert [(x.lead_id, x.phone_id) for x in dials] == [(listed_lead, other_id)]
    (d,) = denied
    assert (d.lead_id, d.decision.codes) == (ceased_lead, ("CEASE",))
    row = await lead_row(db_pool, ceased_lead)
    assert (row["state"], row["last_outcome"]) == ("cancelled", "CEASE")
    assert await decisions(db_pool, ceased) == [(first_id, False, ["CEASE"])]  # one number only
    assert await ledger(db_pool, ceased) == []
    assert len(await ledger(db_pool, listed_person)) == 1


async def test_a_do_not_call_entry_on_the_person_ends_the_lead_at_its_first_number(
    db_pool,
) -> None:
    c = await make_campaign(db_pool, ["mx"])
    listed, lead, (first_id, _) = await debtor(
        db_pool, c, [(mexico_city(), "mobile"), (mexico_city(), "mobile")]
    )
    clean = mexico_city()
    other, other_lead, (clean_id,) = await debtor(db_pool, c, [(clean, "mobile")])
    await block(db_pool, "dnc", person=listed)
    await block(db_pool, "dnc", e164=clean)  # the other debtor's only number
    dials, denied = await claim(db_pool, c, ["mx"])
    assert dials == []
    by_lead = {d.lead_id: d for d in denied}
    assert by_lead[lead].decision.codes == ("DNC",)
    assert (await lead_row(db_pool, lead))["last_outcome"] == "DNC"  # the person's: as before
    assert await decisions(db_pool, listed) == [(first_id, False, ["DNC"])]
    # The other debtor's only number is listed: no number left to call.
    assert (await lead_row(db_pool, other_lead))["last_outcome"] == "no_callable_number"
    assert await decisions(db_pool, other) == [(clean_id, False, ["DNC"])]


async def test_a_callbacks_number_on_do_not_call_gives_way_to_another(db_pool) -> None:
    # The callback's number comes first; listed since, it is denied for its own reason and the
    # person's other number is called at the time they asked for; that call takes the callback.
    c = await make_campaign(db_pool, ["mx"])
    asked = mexico_city()
    person, lead, (other_id, asked_id) = await debtor(
        db_pool, c, [(mexico_city(), "mobile"), (asked, "mobile")]
    )
    debt = await db_pool.fetchval("SELECT debt_id FROM leads WHERE id = $1", lead)
    async with db_pool.acquire() as conn, conn.transaction():
        cb = await schedule_callback(
            conn, debt_id=debt, person_id=person, phone_id=asked_id,
            due_at=NOON - timedelta(minutes=5), source="ivr",
        )  # fmt: skip
    await block(db_pool, "dnc", e164=asked)
    (dial,), denied = await claim(db_pool, c, ["mx"])
    assert denied == []
    assert (dial.lead_id, dial.phone_id) == (lead, other_id)
    assert [(p, r) for p, r, _ in await decisions(db_pool, person)] == [
        (asked_id, False),
        (other_id, True),
    ]
    assert await ledger(db_pool, person) == [(dial.attempt_id, other_id)]
    taken = await db_pool.fetchval("SELECT attempt_id::text FROM callbacks WHERE id = $1", cb)
    assert taken == dial.attempt_id


# ---- the classification, on the decision core's own reasons (pure) ----------------------


def _core_reasons(blocks: tuple[Block, ...], e164: str) -> tuple[Reason, ...]:
    decision = decide(
        Contact(person_id=7, country="MX", region="CMX"),
        (70,),
        PhoneNumber(e164, kind="mobile"),
        "voice",
        NOON,
        History(blocks=blocks),
        rules=load_rules(("mx",)),
    )
    return decision.reasons


def test_the_scope_of_a_block_is_read_from_the_cores_reason() -> None:
    e164 = "+525512345678"
    (on_number,) = _core_reasons((Block("dnc", e164=e164),), e164)
    (on_person,) = _core_reasons((Block("dnc", person_id=7),), e164)
    (on_debt,) = _core_reasons((Block("dnc", person_id=7, debt_id=70),), e164)
    (cease,) = _core_reasons((Block("cease", e164=e164),), e164)
    assert [r.code for r in (on_number, on_person, on_debt, cease)] == [Code.DNC] * 3 + [Code.CEASE]
    assert number_level(on_number, e164)
    assert not number_level(on_person, e164)
    assert not number_level(on_debt, e164)
    assert not number_level(cease, e164)  # a cease is the person's, whatever it came through
    # Stored with the decision and read back the same (the ledger's JSON).
    assert Reason.from_dict(on_number.to_dict()) == on_number
    assert "on_number" not in on_person.to_dict()


def _reason(code: Code, message: str = "", until: datetime | None = None) -> Reason:
    return Reason("r", "p", code, "cite", message, until=until)


def _denied(*reasons: Reason, next_at: datetime | None = None) -> Decision:
    return Decision(False, reasons, next_at, NOON)


def test_settling_a_lead_none_of_whose_numbers_was_allowed() -> None:
    later = timedelta(hours=1)
    a, b = "+525511111111", "+525522222222"
    window = _reason(Code.OUTSIDE_WINDOW)
    consent = _reason(Code.NO_CONSENT)
    listed_a = Reason("r", "p", Code.DNC, "cite", "do-not-call entry", on_number=True)
    # Every number hard-blocked for its own reasons: cancelled, with the first denial.
    first = _denied(listed_a)
    fate = settle_denied([(a, first), (b, _denied(consent))], now=NOON, retry_after_denial=later)
    assert (fate.state, fate.outcome, fate.decision) == ("cancelled", "no_callable_number", first)
    # One number only softly denied: the lead waits for it, the earliest one.
    soon, sooner = NOON + timedelta(hours=3), NOON + timedelta(hours=2)
    fate = settle_denied(
        [(a, _denied(window, next_at=soon)), (b, _denied(window, next_at=sooner))],
        now=NOON,
        retry_after_denial=later,
    )
    assert (fate.state, fate.next_try_at, fate.outcome) == ("ready", sooner, "OUTSIDE_WINDOW")
    # A person's hard reason ends it, whatever came before.
    cease = _reason(Code.CEASE)
    fate = settle_denied(
        [(a, _denied(window, next_at=soon)), (b, _denied(cease))],
        now=NOON,
        retry_after_denial=later,
    )
    assert (fate.state, fate.outcome) == ("cancelled", "CEASE")
    # The person resting (a cooldown) on a number also blocked itself: until the rest ends.
    rest = _reason(Code.COOLDOWN, until=NOON + timedelta(days=2))
    fate = settle_denied([(a, _denied(consent, rest))], now=NOON, retry_after_denial=later)
    assert (fate.state, fate.next_try_at, fate.outcome) == (
        "ready", NOON + timedelta(days=2), "COOLDOWN",
    )  # fmt: skip
    # Nothing decided: again in a minute.
    down = _reason(Code.COMPLIANCE_UNAVAILABLE)
    fate = settle_denied(
        [(a, _denied(listed_a)), (b, _denied(down))], now=NOON, retry_after_denial=later
    )
    assert (fate.state, fate.next_try_at) == ("ready", NOON + timedelta(minutes=1))
    with pytest.raises(ValueError):
        settle_denied([], now=NOON, retry_after_denial=later)


# ---- the plan -----------------------------------------------------------------------------


async def test_the_persons_numbers_are_read_by_person_whatever_the_campaigns_size(db_pool) -> None:
    # 20,000 debtors with two numbers each and a ledger: the numbers of the few persons claimed
    # are found by person, and each number's last reservation by the person's ledger index, in
    # the generic plan the function may cache (checked on the query of its body).
    c = await make_campaign(db_pool, ["mx"])
    await db_pool.execute(
        """INSERT INTO persons (full_name, country, region)
           SELECT 'bulk ' || g, 'MX', 'CMX' FROM generate_series(1, 20000) g"""
    )
    await db_pool.execute(
        """INSERT INTO phone_numbers (person_id, e164, kind)
           SELECT p.id, '+5255' || lpad((p.id * 2 + k)::text, 8, '0'), 'mobile'
           FROM persons p, generate_series(0, 1) k WHERE p.full_name LIKE 'bulk %'"""
    )
    await db_pool.execute(
        """INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)
           SELECT id, $1, 'bulk-' || id, 100, 'MXN' FROM persons WHERE full_name LIKE 'bulk %'""",
        c[2],
    )
    # Each person's first number was reserved more recently than the second (1 and 5 days ago).
    await db_pool.execute(
        """INSERT INTO compliance_attempts (attempt_id, person_id, debt_id, phone_id, e164,
               number_kind, channel, reserved_at)
           SELECT gen_random_uuid(), n.person_id, d.id, n.id, n.e164, 'mobile', 'voice',
                  $1::timestamptz - g * interval '1 day'
                  - CASE WHEN n.e164 LIKE '%0' OR n.e164 LIKE '%2' OR n.e164 LIKE '%4'
                              OR n.e164 LIKE '%6' OR n.e164 LIKE '%8'
                         THEN interval '0 days' ELSE interval '4 days' END
           FROM phone_numbers n JOIN debts d ON d.person_id = n.person_id
           CROSS JOIN generate_series(1, 2) g
           WHERE d.account_ref LIKE 'bulk-%'""",
        NOON,
    )
    await db_pool.execute(  # and their calls, long over
        """INSERT INTO call_attempts (id, person_id, phone_id, node, pbx, state, disposition)
           SELECT gen_random_uuid(), n.person_id, n.id, 'n1', 'sim', 'final', 'no_answer'
           FROM phone_numbers n JOIN persons p ON p.id = n.person_id
           WHERE p.full_name LIKE 'bulk %'"""
    )
    await db_pool.execute(
        "ANALYZE persons; ANALYZE phone_numbers; ANALYZE compliance_attempts; ANALYZE call_attempts"
    )
    persons = [
        r["id"]
        for r in await db_pool.fetch(
            "SELECT id FROM persons WHERE full_name LIKE 'bulk %' ORDER BY id LIMIT 3"
        )
    ]
    body = await db_pool.fetchval(
        "SELECT prosrc FROM pg_proc WHERE proname = 'claim_person_numbers'"
    )
    query = re.search(r"RETURN QUERY(.*?);\s*END", body, re.S)
    assert query is not None
    sql = query.group(1).replace("p_persons", "$1::bigint[]")
    found = await db_pool.fetch(sql, persons)
    assert [len(r[2]) for r in found] == [2, 2, 2]
    plan = await generic_plan(db_pool, sql, "bigint[]", persons)
    nodes = scans(plan["Plan"])
    assert all(s[0] != "Seq Scan" for s in nodes), "\n".join(map(str, nodes))
    # 3 persons: their 6 numbers, and each number's 4 reservation rows (a few rows per person).
    assert sum(s[3] for s in nodes if s[1] in ("phone_numbers", "compliance_attempts")) <= 60
    # The function gives the same, under the persons' locks, in rotation order: the number
    # reserved least recently first (the second one here).
    async with db_pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("SELECT * FROM claim_person_numbers($1::bigint[])", persons)
    assert [r["person_id"] for r in rows] == persons
    for r in rows:
        odd = [e for e in r["e164s"] if int(e[-1]) % 2]
        assert r["e164s"] == [*odd, *(e for e in r["e164s"] if e not in odd)], r
        assert len(odd) == 1
        assert r["busy"] is False
