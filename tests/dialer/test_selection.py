"""Claim, pick a number, gate, record: on the real database."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest

from compliance import ComplianceGate
from dialer.importer import import_leads
from dialer.selection import claim_and_gate
from tests.dialer._floor import NOON


@pytest.fixture
async def campaign(db_pool, tmp_path: Path) -> tuple[int, str]:
    code = f"c{os.urandom(4).hex()}"
    cred = await db_pool.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number, currency)
           VALUES ($1, 'Acme', 'Acme', '+525500000000', 'MXN') RETURNING id""",
        code,
    )
    cid = await db_pool.fetchval(
        "INSERT INTO campaigns (code, name, creditor_id, compliance_packs) "
        "VALUES ($1, 'Test', $2, '{mx}') RETURNING id",
        code,
        cred,
    )
    base = int.from_bytes(os.urandom(2), "big") % 9000
    rows = "".join(
        f"{code}-p{i},Persona {i},{code}-A{i},100,+5255{10_000_000 + base * 100 + i},,"
        f"MX,CMX,0,{i % 3}\n"
        for i in range(10)
    )
    f = tmp_path / "leads.csv"
    f.write_text(
        "external_ref,full_name,account_ref,balance,phone,phone2,country,region,"
        "days_past_due,priority\n" + rows,
        encoding="utf-8",
    )
    s = await import_leads(db_pool, f, code)
    assert s.leads == 10
    return cid, code


async def gate_some(db_pool, campaign, want: int, now=NOON, node: str = "n1"):
    cid, code = campaign
    return await claim_and_gate(
        db_pool,
        ComplianceGate(db_pool),
        campaign_id=cid,
        campaign_code=code,
        packs=["mx"],
        want=want,
        node=node,
        pbx="sim",
        now=now,
    )


async def test_claimed_leads_are_gated_reserved_and_recorded(db_pool, campaign) -> None:
    dials, denied = await gate_some(db_pool, campaign, 4)
    assert len(dials) == 4
    assert not denied
    priorities = await db_pool.fetch(
        "SELECT priority FROM leads WHERE id = ANY($1) ORDER BY priority DESC",
        [d.lead_id for d in dials],
    )
    assert priorities[0]["priority"] == 2  # highest priority first
    for d in dials:
        row = await db_pool.fetchrow(
            "SELECT * FROM call_attempts WHERE id = $1::uuid", d.attempt_id
        )
        assert row["state"] == "originating"
        assert row["lead_id"] == d.lead_id
        assert (
            await db_pool.fetchval(
                "SELECT count(*) FROM compliance_attempts WHERE attempt_id = $1::uuid", d.attempt_id
            )
            == 1
        )
        assert await db_pool.fetchval("SELECT state FROM leads WHERE id = $1", d.lead_id) == (
            "in_call"
        )
        # The zone the gate held the dial's calling hours to: the pacer's hour for its odds.
        assert d.zone == "America/Mexico_City"


async def test_two_nodes_never_claim_the_same_lead(db_pool, campaign) -> None:
    a, b = await asyncio.gather(
        gate_some(db_pool, campaign, 6, node="n1"), gate_some(db_pool, campaign, 6, node="n2")
    )
    ids_a = {d.lead_id for d in a[0]}
    ids_b = {d.lead_id for d in b[0]}
    assert not ids_a & ids_b
    assert len(ids_a | ids_b) == 10


async def test_outside_hours_the_lead_waits_for_the_window(db_pool, campaign) -> None:
    night = NOON + timedelta(hours=11)  # 23:00 in Mexico City
    dials, denied = await gate_some(db_pool, campaign, 3, now=night)
    assert not dials
    assert len(denied) == 3
    for d in denied:
        lead = await db_pool.fetchrow(
            "SELECT state, next_try_at FROM leads WHERE id = $1", d.lead_id
        )
        assert lead["state"] == "ready"
        assert lead["next_try_at"] == d.decision.next_allowed_at
        assert lead["next_try_at"] > night


async def test_do_not_call_cancels_the_lead(db_pool, campaign) -> None:
    cid, _ = campaign
    person, e164 = await db_pool.fetchrow(
        "SELECT p.id, n.e164 FROM leads l JOIN persons p ON p.id = l.person_id "
        "JOIN phone_numbers n ON n.person_id = p.id WHERE l.campaign_id = $1 AND l.priority = 2 "
        "ORDER BY p.id LIMIT 1",
        cid,
    )
    await db_pool.execute(
        "INSERT INTO contact_blocks (kind, e164, source, reason, effective_at) "
        "VALUES ('dnc', $1, 'debtor', 'asked', $2)",
        e164,
        NOON - timedelta(days=1),
    )
    dials, denied = await gate_some(db_pool, campaign, 10)
    blocked = [d for d in denied if "DNC" in d.decision.codes]
    assert len(blocked) == 1
    assert await db_pool.fetchval("SELECT state FROM leads WHERE id = $1", blocked[0].lead_id) == (
        "cancelled"
    )
    assert person not in {d.person_id for d in dials}


async def test_a_debtors_numbers_rotate(db_pool, campaign) -> None:
    cid, _ = campaign
    lead, person = await db_pool.fetchrow(
        "SELECT id, person_id FROM leads WHERE campaign_id = $1 ORDER BY priority DESC, id LIMIT 1",
        cid,
    )
    second = await db_pool.fetchval(
        "INSERT INTO phone_numbers (person_id, e164, kind) VALUES ($1, $2, 'mobile') RETURNING id",
        person,
        f"+52331{int.from_bytes(os.urandom(3), 'big') % 10_000_000:07d}",
    )
    first_round, _ = await gate_some(db_pool, campaign, 1)
    (dial,) = first_round
    assert dial.lead_id == lead
    assert dial.phone_id != second  # the older number first
    await db_pool.execute(  # the call ended; it is due again (and longest waiting)
        "UPDATE leads SET state = 'ready', next_try_at = '2026-01-01' WHERE id = $1", lead
    )
    await db_pool.execute(
        "UPDATE call_attempts SET state = 'final', disposition = 'no_answer' WHERE lead_id = $1",
        lead,
    )
    second_round, _ = await gate_some(db_pool, campaign, 1, now=NOON + timedelta(hours=2))
    (again,) = second_round
    assert again.lead_id == lead
    assert again.phone_id == second  # never tried beats tried two hours ago


class _DiesAfterReserving(ComplianceGate):
    """The node dies right after the ledger reserved its dials, before the intents."""

    async def check_and_reserve_many(self, *args, **kwargs):
        decisions = await super().check_and_reserve_many(*args, **kwargs)
        assert any(d.reserved for d in decisions)
        raise RuntimeError("node died")


async def test_a_death_between_the_reservation_and_the_intents_leaves_nothing(
    db_pool, campaign
) -> None:
    cid, code = campaign
    with pytest.raises(RuntimeError, match="node died"):
        await claim_and_gate(
            db_pool, _DiesAfterReserving(db_pool), campaign_id=cid, campaign_code=code,
            packs=["mx"], want=3, node="n1", pbx="sim", now=NOON,
        )  # fmt: skip
    states = await db_pool.fetch("SELECT DISTINCT state FROM leads WHERE campaign_id = $1", cid)
    assert [s["state"] for s in states] == ["ready"]  # no lead left claimed
    assert (
        await db_pool.fetchval("SELECT count(*) FROM compliance_attempts WHERE campaign = $1", code)
        == 0
    )  # no reservation without its attempt: nothing counts against the debtors
    assert (
        await db_pool.fetchval("SELECT count(*) FROM call_attempts WHERE campaign_id = $1", cid)
        == 0
    )
    dials, _ = await gate_some(db_pool, campaign, 3)  # and the leads are there to dial
    assert len(dials) == 3


async def test_one_call_at_a_time_to_a_person_with_two_debts(
    db_pool, campaign, tmp_path: Path
) -> None:
    # A debtor with two accounts had both leads claimed in one step (or the second while the
    # first call rang): two calls at once to the same person, on the same number.
    _, code = campaign
    f = tmp_path / "second-account.csv"
    phone = await db_pool.fetchval(
        "SELECT n.e164 FROM phone_numbers n JOIN persons p ON p.id = n.person_id"
        " WHERE p.external_ref = $1",
        f"{code}-p0",
    )
    f.write_text(
        "external_ref,full_name,account_ref,balance,phone,country,region\n"
        f"{code}-p0,Persona 0,{code}-B0,100,{phone},MX,CMX\n",
        encoding="utf-8",
    )
    assert (await import_leads(db_pool, f, code)).leads == 1
    person = await db_pool.fetchval("SELECT id FROM persons WHERE external_ref = $1", f"{code}-p0")
    await db_pool.execute("UPDATE leads SET priority = 100 WHERE person_id = $1", person)
    dials, _ = await gate_some(db_pool, campaign, 3)  # both of the person's leads come first
    assert len(dials) == 2  # (one dial fewer this step; the next claims the next lead)
    assert len({d.person_id for d in dials}) == 2
    assert [d.person_id for d in dials].count(person) == 1
    other = await db_pool.fetchrow(
        "SELECT state, attempts, claimed_by FROM leads WHERE person_id = $1 AND id <> $2",
        person,
        next(d.lead_id for d in dials if d.person_id == person),
    )
    assert (other["state"], other["attempts"], other["claimed_by"]) == ("ready", 0, None)
    # While that call is open, no claim takes the person's other lead...
    more, _ = await gate_some(db_pool, campaign, 20)
    assert person not in {d.person_id for d in more}
    # ...and once it is final, one may.
    await db_pool.execute(
        "UPDATE call_attempts SET state = 'final', disposition = 'no_answer' WHERE person_id = $1",
        person,
    )
    last, _ = await gate_some(db_pool, campaign, 20, now=NOON + timedelta(hours=2))
    assert person in {d.person_id for d in last}


async def test_a_paid_or_closed_debt_is_not_dialed(db_pool, campaign) -> None:
    # Paid through the IVR, closed by the creditor: its lead stayed ready and was dialed.
    cid, _ = campaign
    leads = await db_pool.fetch(
        "SELECT id, debt_id FROM leads WHERE campaign_id = $1 ORDER BY priority DESC, id", cid
    )
    paid, closed = leads[0], leads[1]
    await db_pool.execute("UPDATE debts SET status = 'paid' WHERE id = $1", paid["debt_id"])
    await db_pool.execute("UPDATE debts SET status = 'closed' WHERE id = $1", closed["debt_id"])
    states = dict(
        await db_pool.fetch(
            "SELECT id, state FROM leads WHERE id = ANY($1::bigint[])", [paid["id"], closed["id"]]
        )
    )
    assert states == {paid["id"]: "cancelled", closed["id"]: "cancelled"}
    # A lead made ready again (the result of a call during which the debt was paid) is
    # skipped all the same.
    await db_pool.execute("UPDATE leads SET state = 'ready' WHERE id = $1", paid["id"])
    dials, _ = await gate_some(db_pool, campaign, 10)
    dialed = {d.debt_id for d in dials}
    assert dials
    assert paid["debt_id"] not in dialed
    assert closed["debt_id"] not in dialed


async def test_the_campaigns_window_margin_reaches_the_gate(db_pool, campaign) -> None:
    # The campaign's window_margin_s was read by nobody: every dial was gated on the global
    # 90 s, a phone ringing up to ring_timeout_s (120 s allowed) past the window's end.
    from dialer.campaigns import Campaign

    cid, code = campaign
    await db_pool.execute(
        "UPDATE campaigns SET window_margin_s = 600, ring_timeout_s = 45 WHERE id = $1", cid
    )
    c = await Campaign.load(db_pool, code)
    assert c.margin_s == 600
    await db_pool.execute("UPDATE campaigns SET window_margin_s = 30 WHERE id = $1", cid)
    assert (await Campaign.load(db_pool, code)).margin_s == 45  # (never less than a ring)
    dials, _ = await claim_and_gate(
        db_pool, ComplianceGate(db_pool), campaign_id=cid, campaign_code=code, packs=["mx"],
        want=2, node="n1", pbx="sim", now=NOON, margin_s=c.margin_s,
    )  # fmt: skip
    assert dials
    margins = await db_pool.fetch(
        "SELECT margin_s FROM compliance_decisions WHERE attempt_id = ANY($1::uuid[])",
        [d.attempt_id for d in dials],
    )
    assert [r["margin_s"] for r in margins] == [600] * len(dials)
